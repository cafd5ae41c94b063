"""Gradient accumulation made visible: what each consumer adds to a node's grad.

A node used by several steps receives one vector-Jacobian product from each of them, and
autograd *adds* them into its `.grad` (the seed's "Gradient Accumulation" paragraph).
Here every such product is computed by PyTorch itself, `live.vjp(consumer, node,
consumer_grad)`: `torch.autograd.grad` of Σ(consumer · consumer_grad) with respect to
node, the same as `grad_outputs=consumer_grad`, where `consumer_grad` is
∂output/∂consumer as backward stored it, and `consumer` is that step re-run on its
own inputs (`live.LocalStep`), so the product is the local one: in f = p + x, x gets
1·∂f/∂f from f and y·∂f/∂p from p, and the parts add up to x.grad exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backprop_tui.engine.analysis.live import AnalysisError, Live, State, run_live, vjp


@dataclass(frozen=True)
class Contribution:
    """The part of a node's grad that arrives through one consumer (the node's shape)."""

    consumer: str
    value: np.ndarray


@dataclass(frozen=True)
class NodeContributions:
    """A node's grad split by consumer.

    `total` is the sum of the contributions (torch adds them in float32, so it equals
    `grad` up to rounding order). For the output, `contributions` is empty and `total`
    is the seed gradient 1. `reason` says in words why there is nothing to split.
    """

    node: str
    grad: np.ndarray | None
    contributions: tuple[Contribution, ...]
    total: np.ndarray | None
    reason: str = ""

    @property
    def is_accumulated(self) -> bool:
        """True where autograd really adds several parts (the teaching moment)."""
        return len(self.contributions) > 1


def contributions(state: State) -> dict[str, NodeContributions]:
    """Every node's contributions, in graph order, from one forward and backward pass."""
    live = run_live(state)
    return {name: split_grad(live, name) for name in live.trace.tensors}


def node_contributions(state: State, name: str) -> NodeContributions:
    """One node's contributions (the inspector's question for the selected node)."""
    live = run_live(state)
    if name not in live.trace.tensors:
        raise AnalysisError(f"unknown node {name!r}")
    return split_grad(live, name)


def split_grad(live: Live, name: str) -> NodeContributions:
    """The contributions on an already run Live (shared with the stepper and chain rule)."""
    tensor = live.tensor(name)
    output = live.graph.preset.output
    if not live.has_grad(name):
        why = (
            "holds class indices (int): no gradient"
            if not tensor.is_floating_point()
            else "does not require grad: PyTorch computes no gradient for it"
        )
        return NodeContributions(name, None, (), None, f"{name} {why}")
    grad = _array(live.grad(name))
    if grad is None:  # e.g. softmax_classifier's probs: computed for reading, not used by the loss
        return NodeContributions(
            name, None, (), None, f"{name} does not lead to the output {output}: backward never reaches it"
        )
    if name == output:
        return NodeContributions(
            name, grad, (), grad, f"{name} is the output: backward starts with ∂{name}/∂{name} = 1"
        )
    parts = []
    for consumer in live.graph.consumers[name]:
        consumer_grad = live.grad(consumer)
        if not live.has_grad(consumer) or consumer_grad is None:
            continue  # a consumer off the path to the output passes nothing back
        local = live.local(consumer)
        part = vjp(local.output, local.inputs[name], consumer_grad)
        parts.append(Contribution(consumer, _array(part)))
    if not parts:
        return NodeContributions(name, grad, (), None, f"no consumer of {name} passes a gradient back")
    total = parts[0].value.copy()
    for part in parts[1:]:
        total = np.asarray(total + part.value)  # float32, as autograd accumulates
    total.setflags(write=False)
    return NodeContributions(name, grad, tuple(parts), total)


def _array(tensor) -> np.ndarray | None:
    if tensor is None:
        return None
    array = tensor.detach().cpu().numpy().copy()
    array.setflags(write=False)
    return array
