"""Live autograd graphs for the analyses: a private torch graph, run forward and backward.

Every analysis needs more than a Snapshot holds (the autograd graph itself, to ask
`torch.autograd.grad` new questions), so it re-runs the preset through `Graph.forward`
with the session's current values. It does so on a *private* Graph: the session's own
Graph keeps its nn.Parameters untouched, so an analysis can run in a worker thread while
the UI edits, and perturbing values (finite differences, loss slices) never leaks back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Protocol

import numpy as np
import torch

from backprop_tui.engine import limits
from backprop_tui.engine.analysis.symbolic import is_pointwise
from backprop_tui.engine.errors import BackpropError, ComputeError
from backprop_tui.engine.expr import evaluate
from backprop_tui.engine.graph import Graph, Trace
from backprop_tui.engine.ops import TorchOps
from backprop_tui.engine.preset import Preset, StepSpec
from backprop_tui.engine.session import Index, format_index
from backprop_tui.engine.shapes import check_module_input


class AnalysisError(BackpropError):
    """An analysis that does not apply here (a tensor where a scalar is needed, ...): one line."""


def check_cost(state: "State", what: str, *, numbers: int = 0, passes: int = 1) -> None:
    """Refuse an analysis before it runs when it would hold more than MAX_ANALYSIS_NUMBERS
    numbers at once or make `passes` through a graph past MAX_ANALYSIS_WORK."""
    if numbers > limits.MAX_ANALYSIS_NUMBERS:
        raise AnalysisError(
            f"too large to compute here: {what} holds {numbers:,} numbers; the limit is {limits.MAX_ANALYSIS_NUMBERS:,}"
        )
    per_pass = state.preset.derived("pass_cost", lambda: 1)
    if passes * per_pass > limits.MAX_ANALYSIS_WORK:
        raise AnalysisError(
            f"too large to compute here: {what} takes {passes:,} passes of about {per_pass:,} operations each; "
            f"the limit is {limits.MAX_ANALYSIS_WORK:,} in all"
        )


class State(Protocol):
    """What every analysis reads: a `Session` is one; so is `FrozenState`."""

    @property
    def preset(self) -> Preset: ...

    @property
    def values(self) -> Mapping[str, torch.Tensor]: ...

    @property
    def requires_grad(self) -> Mapping[str, bool]: ...


@dataclass(frozen=True)
class FrozenState:
    """A state without a Session: a preset with leaf values and requires_grad flags."""

    preset: Preset
    values: Mapping[str, torch.Tensor]
    requires_grad: Mapping[str, bool]
    # run_live's passes, by requires_grad flags: the values cannot change, so every
    # analysis of this state (chain rule, flags, contributions...) shares one pass
    lives: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, state: "State") -> "FrozenState":
        """A copy of a state (e.g. a Session) taken now: hand this to a worker thread, so
        that edits made meanwhile in the UI thread cannot change what the worker reads."""
        values = {name: value.detach().clone() for name, value in state.values.items()}
        return cls(state.preset, values, dict(state.requires_grad))

    @classmethod
    def initial(cls, preset: Preset) -> "FrozenState":
        """The preset as loaded."""
        values = {leaf.name: torch.from_numpy(leaf.initial.copy()) for leaf in preset.leaves}
        return cls(preset, values, {leaf.name: leaf.requires_grad for leaf in preset.leaves})


def private_graph(preset: Preset, dtype: torch.dtype = torch.float32) -> Graph:
    """A Graph of its own; float64 for finite differences.

    nn.Linear initialises its weights from torch's global RNG; we overwrite them on every
    forward anyway, so the construction runs inside fork_rng to leave the caller's seeded
    random streams exactly where they were.
    """
    with torch.random.fork_rng(devices=[]):
        graph = Graph(preset)
    if dtype != torch.float32:
        for module in graph.modules.values():
            module.to(dtype)  # in place: graph.parameters keeps pointing at the same Parameters
    return graph


def leaf_values(state: State, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Copies of the leaf values (float leaves cast to `dtype`; class indices stay int)."""
    return {
        name: (value.to(dtype) if value.is_floating_point() else value).clone()
        for name, value in state.values.items()
    }


def all_float_leaves(state: State) -> dict[str, bool]:
    """requires_grad for every float leaf: lets autograd answer "what if x required grad?"."""
    return {name: bool(value.is_floating_point()) for name, value in state.values.items()}


@dataclass
class Live:
    """One forward + backward on a private graph, with the autograd graph kept alive.

    `trace.tensors[name]` are the live tensors; the graph is retained, so it can be asked
    again with `torch.autograd.grad` (not so a session's own pass: see session_pass).
    `grads` are the `.grad`s right after backward: a later `autograd.grad` through a step
    fires its retain_grad hook, which sets that
    step's `.grad` to the sum so far, so the live `.grad` attributes must not be read
    afterwards (tests/engine checks that `grads` keep their values).
    """

    graph: Graph
    trace: Trace
    requires_grad: dict[str, bool]
    grads: dict[str, torch.Tensor | None]
    _locals: dict[str, "LocalStep"] = field(default_factory=dict)

    def tensor(self, name: str) -> torch.Tensor:
        return self.trace.tensors[name]

    def grad(self, name: str) -> torch.Tensor | None:
        """∂output/∂name as autograd stored it (None where no gradient reached the node)."""
        return self.grads[name]

    def local(self, step: str) -> "LocalStep":
        """The step re-run on its own (cached): see `LocalStep`."""
        if step not in self._locals:
            self._locals[step] = local_step(self.graph, step, self.trace.tensors)
        return self._locals[step]

    def has_grad(self, name: str) -> bool:
        """Whether PyTorch fills a gradient for this node under these requires_grad flags."""
        if name in self.requires_grad:
            return self.requires_grad[name]
        return name in self.trace.retained


def run_live(state: State, requires_grad: Mapping[str, bool] | None = None) -> Live:
    """Forward and backward through real torch with the graph retained.

    `requires_grad` defaults to the state's flags (what the user sees); pass
    `all_float_leaves(state)` to differentiate with respect to inputs too.
    """
    flags = dict(state.requires_grad if requires_grad is None else requires_grad)
    lives = state.lives if isinstance(state, FrozenState) else None
    key = tuple(sorted(flags.items()))
    if lives is not None and key in lives:
        return lives[key]
    live = _run_live(state, flags)
    if lives is not None:
        lives[key] = live
    return live


def session_pass(session, snapshot) -> Live | None:
    """The forward and backward the session ran for `snapshot`, as a Live; None when the
    session has computed anything since.

    Valid only until the session's next edit, which writes into the leaves and parameters
    this pass holds: for analyses run at once, in the edit's own thread, never for a
    worker (see `share_pass`). Unlike a Live of run_live, its autograd graph is not
    retained (retaining it in every edit's backward made deep_chain's recompute twice as
    slow): the inspector's analyses do not need it, since they ask autograd one step at a
    time (`Live.local`); an analysis that asks through the whole graph runs its own pass.
    """
    last = session.graph.last_pass
    if last is None or last[0] is not snapshot or snapshot is not session.snapshot:
        return None
    _, trace, flags = last
    return Live(session.graph, trace, dict(flags), {name: t.grad for name, t in trace.tensors.items()})


def share_pass(state: "FrozenState", live: Live) -> None:
    """Let every analysis of `state` use `live` (a pass of the same values) for its flags."""
    state.lives.setdefault(tuple(sorted(live.requires_grad.items())), live)


def _run_live(state: State, flags: dict[str, bool]) -> Live:
    graph = private_graph(state.preset)
    try:
        trace = graph.forward(leaf_values(state), flags)
        if trace.output.requires_grad:
            trace.output.backward(retain_graph=True)
    except ComputeError:
        raise
    except (RuntimeError, ValueError, IndexError) as exc:
        raise ComputeError(_first_line(exc)) from None
    # the .grad tensors themselves: no copy is needed, because nothing writes into them
    # later (autograd.grad leaves leaves' .grad alone, and a step's retain_grad hook puts
    # a new tensor in .grad rather than adding in place); deep_chain: 2.2 -> 0.2 ms
    grads = {name: t.grad for name, t in trace.tensors.items()}
    return Live(graph, trace, flags, grads)


def evaluate_output(graph: Graph, values: Mapping[str, torch.Tensor]) -> float:
    """The output for these leaf values, without autograd (nan if torch refuses)."""
    flags = {name: False for name in values}
    try:
        with torch.no_grad():
            return float(graph.forward(dict(values), flags).output.reshape(-1)[0])
    except (BackpropError, RuntimeError, ValueError, IndexError):
        return float("nan")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ---------------------------------------------------------------- elements


def check_leaf_element(state: State, name: str, index: Index | None) -> Index:
    """A valid index into a float leaf; `None` or `()` is accepted for a one-element tensor."""
    if name not in state.values:
        raise AnalysisError(f"unknown leaf {name!r}; leaves: {', '.join(state.values)}")
    tensor = state.values[name]
    if not tensor.is_floating_point():
        raise AnalysisError(f"{name} holds class indices (int): it has no gradient")
    if not index:
        if tensor.numel() != 1:
            raise AnalysisError(
                f"{name} has shape {list(tensor.shape)}: "
                f"choose one element, e.g. {name}[{','.join('0' * tensor.dim())}]"
            )
        return (0,) * tensor.dim()
    index = tuple(index)
    if len(index) != tensor.dim() or any(
        isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < n for k, n in zip(index, tensor.shape)
    ):
        raise AnalysisError(f"{format_index(name, index)} is not an element of {name} (shape {list(tensor.shape)})")
    return index


def element_label(name: str, shape: tuple[int, ...], flat: int) -> str:
    """`W1[0,1]` for flat index 1 of a 2×2 tensor; the bare name for a 0-d tensor."""
    if not shape:
        return name
    return format_index(name, tuple(int(i) for i in np.unravel_index(flat, shape)))


# ---------------------------------------------------------------- autograd questions

MAX_JACOBIAN_ENTRIES = 65_536  # beyond this a Jacobian is summarised, not built row by row


def flowing(graph: Graph, requires_grad: Mapping[str, bool]) -> dict[str, bool]:
    """Which nodes get a gradient: a step does when any of its inputs does (as in torch)."""
    flows = {name: bool(requires_grad.get(name, False)) for name in graph.preset.leaf_names}
    for step in graph.preset.steps:
        flows[step.name] = any(flows[i] for i in graph.inputs[step.name])
    return flows


def vjp(output: torch.Tensor, tensor: torch.Tensor, grad_output: torch.Tensor) -> torch.Tensor:
    """grad_outputᵀ · ∂output/∂tensor, by torch.autograd.grad on the retained graph.

    Asked as the gradient of the scalar Σ(output · grad_output): its gradient with respect
    to `output` is exactly `grad_output` (1 · grad_output, bit for bit), so what reaches
    `tensor` is the same as passing `grad_outputs=grad_output`. That form is avoided
    because torch checks an explicit grad_outputs' shape through
    torch.fx.experimental.symbolic_shapes, which imports sympy: 0.35-0.5 s and 30 MB the
    first time the inspector explains a node, at start-up.
    """
    (result,) = torch.autograd.grad((output * grad_output).sum(), tensor, retain_graph=True, allow_unused=True)
    return torch.zeros_like(tensor) if result is None else result


def jacobian(output: torch.Tensor, tensor: torch.Tensor, max_entries: int = MAX_JACOBIAN_ENTRIES) -> np.ndarray | None:
    """∂output/∂tensor with shape output.shape + tensor.shape, one autograd.grad per output
    element; None when it would be larger than `max_entries` or no gradient can flow."""
    if not (output.requires_grad and tensor.requires_grad) or output.numel() * tensor.numel() > max_entries:
        return None
    rows = []
    flat = output.reshape(-1)
    for k in range(flat.numel()):
        # row k is the gradient of output element k: autograd.grad of flat[k] gives the
        # same numbers as a one-hot vjp (select's backward is that one-hot), at half the cost
        (row,) = torch.autograd.grad(flat[k], tensor, retain_graph=True, allow_unused=True)
        rows.append(torch.zeros(tensor.numel(), dtype=tensor.dtype) if row is None else row.detach().reshape(-1))
    matrix = torch.stack(rows).to(torch.float64).numpy()
    return matrix.reshape(tuple(output.shape) + tuple(tensor.shape))


# ---------------------------------------------------------------- one step on its own


@dataclass(frozen=True)
class LocalStep:
    """One step evaluated by the same torch ops on detached copies of its inputs.

    Why: `torch.autograd.grad(step, node)` on the full graph is the *total* derivative,
    which also counts paths through the step's other inputs when they depend on the node
    (in f = p + x with p = x*y, it gives y + 1, not the local 1). On this small graph of
    one step, each input is a leaf of its own, so autograd gives the local partial
    ∂step/∂input with the other inputs held fixed: the factor backprop multiplies by.
    """

    step: str
    inputs: dict[str, torch.Tensor]  # detached copies; float ones require grad
    output: torch.Tensor
    pointwise: bool = False  # arithmetic and elementwise functions only (symbolic.is_pointwise)

    def jacobian(self, name: str, max_entries: int = MAX_JACOBIAN_ENTRIES) -> np.ndarray | None:
        """∂output/∂input `name` (see `jacobian`). Of a pointwise step, with respect to an
        input of the output's own shape, it is diagonal: output element k depends on
        input element k alone, so one vjp with ones gives every entry, where `jacobian`
        asks once per row (relu(Z1) of 2×3: one autograd call instead of six)."""
        output, tensor = self.output, self.inputs[name]
        if not (self.pointwise and output.shape == tensor.shape):
            return jacobian(output, tensor, max_entries)
        if not (output.requires_grad and tensor.requires_grad) or output.numel() ** 2 > max_entries:
            return None
        diagonal = vjp(output, tensor, torch.ones_like(output)).detach().reshape(-1).to(torch.float64).numpy()
        return np.diag(diagonal).reshape(tuple(output.shape) + tuple(tensor.shape))


def step_spec(preset: Preset, name: str) -> StepSpec:
    """The preset's step called `name`."""
    for step in preset.steps:
        if step.name == name:
            return step
    raise KeyError(name)


def local_step(graph: Graph, step: str, tensors: Mapping[str, torch.Tensor]) -> LocalStep:
    inputs = {}
    for name in graph.inputs[step]:
        value = tensors[name].detach()
        inputs[name] = value.requires_grad_(True) if value.is_floating_point() else value
    env = dict(inputs)

    specs = {spec.name: spec for spec in graph.preset.modules}

    def call_module(module: str, x: torch.Tensor) -> torch.Tensor:
        spec = specs[module]
        check_module_input(spec, x, ComputeError)
        params = {p: env[f"{module}.{p}"] for p in spec.parameters}
        return spec.kind.functional(dict(spec.options), x, params)  # what the torch.nn module computes

    spec = step_spec(graph.preset, step)
    output = torch.as_tensor(evaluate(spec.expr.tree, TorchOps(env, call_module, ComputeError, f"step {step!r}")))
    if any(output is t for t in inputs.values()):  # a bare name, as Graph.forward does
        output = output.view_as(output)
    pointwise = graph.preset.derived(
        "_pointwise_steps", lambda: frozenset(s.name for s in graph.preset.steps if is_pointwise(s.expr.tree)))
    return LocalStep(step, inputs, output, step in pointwise)
