"""The two passes one node at a time, for a step-through mode.

Forward: leaves, then steps in order, each with its expression and value (numbers
substituted where the inputs are scalars: `h = x + 5 = −3 + 5 = 2`).
Backward: reverse topological order from the output. At each node its grad is complete
(every consumer has already sent its part), and it sends to each input
incoming grad × local derivative = contribution, which the input accumulates.
All numbers come from torch (contributions.py, local.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backprop_tui.engine.analysis.contributions import split_grad
from backprop_tui.engine.analysis.live import State, run_live, step_spec
from backprop_tui.engine.analysis.local import LocalDerivative, local_derivative
from backprop_tui.engine.analysis.symbolic import show
from backprop_tui.engine.expr import BinOp, Call, Expr, ModuleCall, Neg, Ref, Transpose
from backprop_tui.engine.format import format_array, format_shape
from backprop_tui.engine.numbers import fmt


@dataclass(frozen=True)
class ForwardStep:
    index: int
    node: str
    kind: str  # "input", "target", "parameter", "intermediate" or "output"
    inputs: tuple[str, ...]
    value: np.ndarray
    text: str


@dataclass(frozen=True)
class Push:
    """What one node sends back to one of its inputs during backward."""

    input: str
    incoming: np.ndarray  # ∂output/∂node, the grad arriving from above
    local: LocalDerivative  # ∂node/∂input
    contribution: np.ndarray  # incoming × local, as a vector-Jacobian product by torch
    accumulated: np.ndarray  # the input's grad so far, this contribution included
    complete: bool  # True once the input has received from all its consumers
    text: str


@dataclass(frozen=True)
class BackwardStep:
    index: int
    node: str
    grad: np.ndarray  # complete when the node's turn comes
    pushes: tuple[Push, ...]
    text: str


def forward_steps(state: State) -> tuple[ForwardStep, ...]:
    """Leaves (their values), then every step in the order it runs."""
    live = run_live(state)
    graph = live.graph
    tensors = live.trace.tensors
    result = []
    for i, (name, tensor) in enumerate(tensors.items()):
        value = _array(tensor)
        kind = graph.kinds[name]
        if name in graph.preset.leaf_names:
            grad_word = "requires grad" if live.requires_grad.get(name) else "no grad"
            text = f"{name} = {format_array(value)} ({kind}, {grad_word})"
        else:
            tree = step_spec(graph.preset, name).expr.tree
            text = f"{name} = {show(tree, display=True)}"
            scalars = {
                n: float(tensors[n].detach().reshape(-1)[0])
                for n in graph.inputs[name]
                if tensors[n].numel() == 1 and tensors[n].dim() == 0
            }
            if scalars and len(scalars) == len(graph.inputs[name]):
                text += f" = {show(_substitute(tree, scalars), display=True)}"
            text += (
                f" = {format_array(value)}"
                if value.size == 1
                else f" → {format_shape(value.shape)}: {format_array(value)}"
            )
        result.append(ForwardStep(i, name, kind, graph.inputs[name], value, text))
    return tuple(result)


def backward_steps(state: State) -> tuple[BackwardStep, ...]:
    """From the output back to the leaves; nodes without a gradient are passed over."""
    live = run_live(state)
    graph = live.graph
    output = graph.preset.output
    received: dict[str, list[np.ndarray]] = {}
    running: dict[str, np.ndarray] = {}  # float32 sums in arrival order, as AccumulateGrad adds
    splits = {name: split_grad(live, name) for name in live.trace.tensors}
    parts_from = {(c.consumer, name): c.value for name, split in splits.items() for c in split.contributions}
    steps = []
    for name in reversed(list(live.trace.tensors)):
        grad_t = live.grad(name)
        if grad_t is None or not live.has_grad(name):
            continue
        grad = _array(grad_t)
        pushes = []
        if name in graph.preset.leaf_names:
            parts = received.get(name, [])
            sum_text = " + ".join(format_array(p) for p in parts) if len(parts) > 1 else ""
            text = (
                f"{name}.grad = {sum_text + ' = ' if sum_text else ''}{format_array(grad)} "
                "(AccumulateGrad stores it in the leaf)"
            )
        else:
            for input_name in graph.inputs[name]:
                if not live.has_grad(input_name):
                    continue
                local = local_derivative(live, name, input_name)
                contribution = parts_from[(name, input_name)]
                received.setdefault(input_name, []).append(contribution)
                so_far = running.get(input_name)
                accumulated = contribution.copy() if so_far is None else np.asarray(so_far + contribution)
                accumulated.setflags(write=False)
                running[input_name] = accumulated
                complete = len(received[input_name]) == len(splits[input_name].contributions)
                pushes.append(
                    Push(
                        input_name,
                        grad,
                        local,
                        contribution,
                        accumulated,
                        complete,
                        _push_text(output, name, input_name, grad, local, contribution, accumulated, complete),
                    )
                )
            seed = " (the seed: ∂{0}/∂{0} = 1)".format(name) if name == output else ""
            targets = ", ".join(p.input for p in pushes) or "nothing (no input requires grad)"
            text = f"{name}: grad {format_array(grad)}{seed}; sends to {targets}"
        steps.append(BackwardStep(len(steps), name, grad, tuple(pushes), text))
    return tuple(steps)


def _push_text(output, node, input_name, incoming, local, contribution, accumulated, complete) -> str:
    if incoming.size == 1 and local.value is not None:
        line = (
            f"{node} → {input_name}: {_factor(float(incoming))} × {_factor(local.value)} = {fmt(float(contribution))}"
        )
    else:
        line = f"{node} → {input_name}: ∂{output}/∂{node} · ∂{node}/∂{input_name} = {format_array(contribution)}"
    if not np.array_equal(accumulated, contribution):
        line += f"; {input_name} has {format_array(accumulated)} so far"
    if not complete:
        line += " (more to come)"
    return line


def _factor(value: float) -> str:
    """A number inside a product: negatives in brackets, `18 × (−3)`."""
    return f"({fmt(value)})" if value < 0 else fmt(value)


def _substitute(tree: Expr, scalars: dict[str, float]) -> Expr:
    """The tree with each scalar name replaced by its value, for `= −3 + 5`."""
    match tree:
        case Ref(name) if name in scalars:
            value = scalars[name]
            text = fmt(value).replace("-", "−")
            return Ref(f"({text})" if value < 0 else text)
        case BinOp(op, a, b):
            return BinOp(op, _substitute(a, scalars), _substitute(b, scalars))
        case Neg(a):
            return Neg(_substitute(a, scalars))
        case Transpose(a):
            return Transpose(_substitute(a, scalars))
        case Call(func, args, kwargs):
            return Call(func, tuple(_substitute(a, scalars) for a in args), kwargs)
        case ModuleCall(module, a):
            return ModuleCall(module, _substitute(a, scalars))
    return tree


def _array(tensor) -> np.ndarray:
    array = tensor.detach().numpy().copy()
    array.setflags(write=False)
    return array
