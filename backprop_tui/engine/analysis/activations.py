"""The inputs and outputs of every function the registry flags (relu, sigmoid, tanh, abs, ...).

An activation may sit inside a longer expression (`relu(x*2 - 1)`), where its input is
no node of the graph; to judge it (dead? saturated? at a kink?) we evaluate its argument
with the same torch ops on the forward pass's tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from backprop_tui.engine.analysis.live import State, run_live
from backprop_tui.engine.analysis.symbolic import show
from backprop_tui.engine.errors import ComputeError
from backprop_tui.engine.expr import BinOp, Call, Expr, ModuleCall, Neg, Ref, Transpose, evaluate
from backprop_tui.engine.functions import FUNCTIONS
from backprop_tui.engine.ops import TorchOps

ACTIVATIONS = tuple(name for name, fn in FUNCTIONS.items() if fn.flags)  # what flags.py judges


@dataclass(frozen=True)
class Activation:
    step: str  # the step whose expression calls it
    func: str  # one of ACTIVATIONS
    arg: str  # its argument as text: "Z1", "x*2 - 1"
    input: np.ndarray  # z
    output: np.ndarray  # f(z)
    flows: bool  # whether a gradient passes through it under the current requires_grad flags
    kwargs: dict = field(default_factory=dict)  # the call's keywords (leaky_relu's negative_slope)


def activations(state: State) -> tuple[Activation, ...]:
    """Every activation call in every step, with its input and output values, in order."""
    # the forward pass every analysis of this state shares (run_live): its tensors are
    # the values the user sees, and requires_grad on them says whether a gradient flows
    env = run_live(state).trace.tensors
    with torch.enable_grad():
        found = []
        for step, call, z, ops in _evaluated_calls(state.preset, env):
            out = env[step.name] if call is step.expr.tree else torch.as_tensor(evaluate(call, ops))
            found.append(Activation(step.name, call.func, show(call.args[0]), _array(z), _array(out), z.requires_grad,
                                    dict(call.kwargs)))
    return tuple(found)


@dataclass(frozen=True)
class KinkInput:
    """The input of a call of a function with a kink at 0 (the registry's "kink" flag)."""

    step: str
    func: str  # "relu", "abs"
    arg: str  # its argument as text
    input: torch.Tensor  # z, as evaluated on the tensors given


def kink_inputs(preset, env: Mapping[str, torch.Tensor]) -> list[KinkInput]:
    """The inputs of every relu, abs, ... call in the steps, evaluated on `env` (the tensors
    of a forward pass, in any dtype): where one is exactly 0, the step has no derivative."""
    return [
        KinkInput(step.name, call.func, show(call.args[0]), z)
        for step, call, z, _ in _evaluated_calls(preset, env)
        if "kink" in FUNCTIONS[call.func].flags
    ]


def _evaluated_calls(preset, env: Mapping[str, torch.Tensor]) -> Iterator[tuple[object, Call, torch.Tensor, TorchOps]]:
    """(step, call, its argument's value, the ops that evaluated it) for each activation call."""

    def call_module(module: str, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, env[f"{module}.weight"], env.get(f"{module}.bias"))

    # each step's activation calls, found once per preset (deep_chain: 500 trees, ~0.8 ms an edit)
    calls = preset.derived("_activation_calls", lambda: [_calls(s.expr.tree) for s in preset.steps])
    for step, step_calls in zip(preset.steps, calls):
        ops = TorchOps(env, call_module, ComputeError, f"step {step.name!r}")
        for call in step_calls:
            arg = call.args[0]
            # a node's own tensor where there is one (tanh(a) in a step of its own:
            # deep_chain's 250), else the same torch ops on the forward pass's tensors
            z = env[arg.name] if isinstance(arg, Ref) else torch.as_tensor(evaluate(arg, ops))
            yield step, call, z, ops


def _calls(tree: Expr) -> list[Call]:
    """Activation calls in the tree, outermost first."""
    match tree:
        case Call(func, args, _):
            inner = [c for a in args for c in _calls(a)]
            return ([tree] if func in ACTIVATIONS else []) + inner
        case BinOp(_, a, b):
            return _calls(a) + _calls(b)
        case Neg(a) | Transpose(a) | ModuleCall(_, a):
            return _calls(a)
    return []


def _array(tensor: torch.Tensor) -> np.ndarray:
    array = tensor.detach().numpy().copy()
    array.setflags(write=False)
    return array
