"""Immutable results of one forward and backward pass: what every view renders."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

KINDS = ("input", "target", "parameter", "intermediate", "output")
LEAF_KINDS = ("input", "target", "parameter")


@dataclass(frozen=True)
class AutogradFn:
    """One node of PyTorch's backward graph (`tensor.grad_fn` and its next_functions).

    `node` names the graph node whose tensor this function produced (for the first
    function of a step) or whose leaf it accumulates into (AccumulateGrad).
    `ref` is true where the chain reaches another named node: its own chain is
    listed under that node, so it is not repeated here.
    """

    name: str
    node: str | None = None
    ref: bool = False
    children: tuple["AutogradFn", ...] = ()


@dataclass(frozen=True)
class Node:
    name: str
    expr: str  # the step's expression; "" for leaves
    kind: str  # one of KINDS
    inputs: tuple[str, ...]
    consumers: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str  # "float" or "int"
    value: np.ndarray  # read-only
    grad: np.ndarray | None  # None where no gradient flows (never shown as 0)
    requires_grad: bool
    grad_fn: str | None  # e.g. "PowBackward0"; None for leaves
    note: str = ""
    module: str | None = None

    @classmethod
    def trusted(cls, fields: dict) -> "Node":
        """Node(**fields) for the engine's own snapshots, without the frozen dataclass's
        per-field setattr: a snapshot of a 500-step chain builds a thousand nodes per edit.
        `fields` must hold every field, and becomes the node's own (not to be reused);
        tests/engine/test_compiled.py checks that the result equals Node(**fields).
        """
        node = object.__new__(cls)
        object.__setattr__(node, "__dict__", fields)
        return node

    @property
    def is_leaf(self) -> bool:
        return self.kind in LEAF_KINDS

    @property
    def is_scalar(self) -> bool:
        return self.value.size == 1

    def scalar(self) -> float:
        return float(self.value.reshape(-1)[0])

    def scalar_grad(self) -> float | None:
        return None if self.grad is None else float(self.grad.reshape(-1)[0])


@dataclass(frozen=True)
class Snapshot:
    preset: str
    title: str
    output: str
    nodes: tuple[Node, ...]
    autograd: dict[str, AutogradFn] = field(compare=False)
    warnings: tuple[str, ...] = ()
    # module buffers after this pass, not differentiated: "bn.running_mean" -> values
    buffers: dict[str, np.ndarray] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {n.name: n for n in self.nodes})

    def no_gradient_reason(self) -> str:
        """Why no leaf has a gradient: an int output (argmax) has none to give, or no leaf asks for one."""
        if self.node(self.output).dtype == "int":
            return f"{self.output} is an int tensor, which has no gradient (argmax gives positions): no leaf gets one"
        if not any(n.requires_grad for n in self.nodes if n.is_leaf):
            return "no leaf requires grad"
        return f"no leaf that requires grad reaches {self.output} through operations with a gradient"

    def node(self, name: str) -> Node:
        return self._index[name]  # type: ignore[attr-defined]

    def __contains__(self, name: str) -> bool:
        return name in self._index  # type: ignore[attr-defined]

    @property
    def loss(self) -> float:
        return self.node(self.output).scalar()

    @property
    def leaves(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.is_leaf)

    @property
    def finite(self) -> bool:
        return not self.warnings
