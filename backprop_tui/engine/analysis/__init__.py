"""Why each gradient has its value: analyses on top of the engine, every number from torch.

Each function takes a *state*: anything with `.preset`, `.values` (leaf tensors) and
`.requires_grad` (a `Session` is one; `live.FrozenState.initial(preset)` makes one
without a session). It runs the preset on a private Graph, so it is safe in a worker
thread and leaves the session untouched, and returns frozen dataclasses of numpy
arrays and text. Import from the modules (their names are the questions they answer):

  contributions  contributions(state), node_contributions(state, name)
  local          local_derivatives(state, name), chain_rule(state, name)
  paths          paths(state, leaf, index)
  per_sample     per_sample(state)
  gradcheck      gradcheck(state), check_element(state, leaf, index), check_your_gradient(snapshot, ...)
  stepper        forward_steps(state), backward_steps(state)
  loss_slice     loss_slice(state, leaf, index)
  flags          flags(state)
  custom         custom_preset(text, values), free_names(text)
  training       train(state, steps, ...), accumulate_grads(state, times)
"""
