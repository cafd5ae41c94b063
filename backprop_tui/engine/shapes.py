"""Shape checking when a preset loads: every step runs on data-free stand-ins.

Each leaf is a zero-stride CPU tensor, `zeros((), dtype).expand(shape)`: the shape and
dtype of the real one with a single element of storage (zeros are valid class indices,
so nothing depends on values). Each step runs through TorchOps, so a step that does not
fit fails with torch's own check and TorchOps' wording, and every result is replaced by
a stand-in of its shape again, so no value (a nan from log(0), say) reaches the next
operation.

Why not torch's "meta" device, which needs no data at all: its first elementwise op runs
a Python decomposition that imports torch._dynamo (1.0-1.3 s and 70 MB on first use) and
sympy (0.35 s, 30 MB). On CPU, torch's C++ kernels check the shapes.

A CPU op allocates its real output, so the operations that can make a result bigger than
their operands (broadcasting, '@', a module, indexing by an int tensor, and the functions
whose registry entry gives a `result_shape`: cat, one_hot) have their output shape worked out
in plain Python first and are refused past `limits.MAX_ELEMENTS_PER_TENSOR` before torch
runs. Every other operation makes a result no bigger than its largest operand, which is
within the limit already.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from backprop_tui.engine import limits
from backprop_tui.engine.errors import PresetError
from backprop_tui.engine.functions import FUNCTIONS
from backprop_tui.engine.modules import embedding_index_problem
from backprop_tui.engine.ops import TorchOps, broadcast, evaluate_step

_ZEROS: dict[torch.dtype, torch.Tensor] = {}


def stand_in(shape: tuple[int, ...] | torch.Size, dtype: torch.dtype) -> torch.Tensor:
    """A tensor of `shape` and `dtype` holding zeros, with one element of storage."""
    zero = _ZEROS.get(dtype)
    if zero is None:
        zero = _ZEROS[dtype] = torch.zeros((), dtype=dtype)
    return zero.expand(shape)




def _matmul_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """torch.matmul's output shape (operands at least 1-d), or None if torch would refuse."""
    if len(a) == 1 and len(b) == 1:
        return () if a[0] == b[0] else None
    if len(b) == 1:
        return a[:-1] if a[-1] == b[0] else None
    if len(a) == 1:
        return b[:-2] + b[-1:] if a[0] == b[-2] else None
    if a[-1] != b[-2]:
        return None
    batch = broadcast(a[:-2], b[:-2])
    return None if batch is None else batch + (a[-2], b[-1])


class LoadCost:
    """What computing the preset will cost, added up op by op as the shapes are checked:
    the elements of every tensor an operation makes (what autograd keeps for the backward
    pass; views are free) and the multiply-adds of '@' and Linear layers. Each is refused
    past its limit before the operation that passes it runs."""

    def __init__(self) -> None:
        self.kept_elements = 0
        self.multiply_adds = 0

    def keep(self, ops: "CheckOps", n: int) -> None:
        if self.kept_elements + n > limits.MAX_KEPT_ELEMENTS:
            raise ops.fail(
                "too much to keep for the backward pass",
                f"the operations up to here make {self.kept_elements + n:,} elements in all; "
                f"the limit is {limits.MAX_KEPT_ELEMENTS:,}",
            )
        self.kept_elements += n

    def work(self, ops: "CheckOps", what: str, n: int) -> None:
        if self.multiply_adds + n > limits.MAX_MULTIPLY_ADDS:
            raise ops.fail(
                "too much work",
                f"{what} takes {n:,} multiply-adds, {self.multiply_adds + n:,} in all up to here; "
                f"the limit is {limits.MAX_MULTIPLY_ADDS:,}",
            )
        self.multiply_adds += n


class CheckOps(TorchOps):
    """TorchOps on stand-ins that also refuses any single operation past the limit, before
    torch allocates it, so `sum(v @ v.T)` cannot hide a 10^10-element matrix inside one step,
    and adds up what the whole computation costs (LoadCost)."""

    check_values = False

    def __init__(self, *args, cost: LoadCost | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.cost = LoadCost() if cost is None else cost

    def limit(self, shape: tuple[int, ...] | None) -> None:
        if shape is None:
            return  # torch refuses the operands; let it word that
        n = math.prod(shape)
        if n > limits.MAX_ELEMENTS_PER_TENSOR:
            raise self.fail(
                "an operation makes too large a tensor",
                f"shape {list(shape)} ({n:,} elements); the limit is {limits.MAX_ELEMENTS_PER_TENSOR:,}",
            )

    def check_size(self, shape: tuple[int, ...]) -> None:
        self.limit(shape)  # x[Xb] can be far larger than x and Xb

    def _stand_in(self, result: Any, kept: bool = True) -> Any:
        if not isinstance(result, torch.Tensor):
            return result  # a Python number (constants)
        self.limit(tuple(result.shape))  # a second look, should an operation be missed above
        if kept:
            self.cost.keep(self, result.numel())
        return stand_in(result.shape, result.dtype)

    def _binary(self, op, a, b):
        """Counted, and refused past a limit, before torch runs it (binop counts no more)."""
        if op == "@":
            shape = _matmul_shape(tuple(a.shape), tuple(b.shape))
            self.limit(shape)
            if shape is not None:
                # each element of the product is a.shape[-1] multiply-adds
                self.cost.work(self, f"'@' of {list(a.shape)} and {list(b.shape)}", math.prod(shape) * a.shape[-1])
                self.cost.keep(self, math.prod(shape))
                return stand_in(shape, torch.promote_types(a.dtype, b.dtype))  # the shape is all a check needs
        elif isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
            shape = broadcast(tuple(a.shape), tuple(b.shape))
            self.limit(shape)
        else:
            shape = tuple((a if isinstance(a, torch.Tensor) else b).shape)
        if shape is not None:
            self.cost.keep(self, math.prod(shape))
        return super()._binary(op, a, b)

    def binop(self, op, a, b):
        return self._stand_in(super().binop(op, a, b), kept=False)  # _binary counted it

    def neg(self, a):
        return self._stand_in(super().neg(a))

    def transpose(self, a):
        return self._stand_in(super().transpose(a), kept=False)  # a view

    def call(self, func, args, kwargs):
        view = func in FUNCTIONS and FUNCTIONS[func].view  # reshape, transpose, ...: no new elements
        return self._stand_in(super().call(func, args, kwargs), kept=not view)

    def module(self, name, x):
        return self._stand_in(super().module(name, x))


def check_module_input(spec, x: torch.Tensor, error: type = PresetError, check_values: bool = True) -> None:
    """One clear line for an input the module cannot take: its shape or dtype (from the
    shapes alone), and with real values an Embedding index outside the table."""
    problem = spec.kind.check_input(spec.name, dict(spec.options), tuple(x.shape), x.is_floating_point())
    if problem is None and check_values and spec.type == "Embedding":
        problem = embedding_index_problem(spec.name, dict(spec.options), x)
    if problem is not None:
        raise error(problem)


class ShapeCheck:
    """Checks steps one at a time, as the file is read, so that a file is refused at the
    first step that does not fit or passes a limit, before the steps after it are parsed."""

    def __init__(self, leaves, modules, label: str):
        self.label = label
        self.env: dict[str, torch.Tensor] = {
            leaf.name: stand_in(leaf.shape, torch.int64 if leaf.dtype == "int" else torch.float32) for leaf in leaves
        }
        self.modules = {m.name: m for m in modules}
        self.cost = LoadCost()
        self.step_elements = 0
        self.steps = 0

    def _call_module(self, ops: "CheckOps", name: str, x: torch.Tensor) -> torch.Tensor:
        spec = self.modules[name]
        check_module_input(spec, x, check_values=False)
        options = dict(spec.options)
        shape = spec.kind.output_shape(options, tuple(x.shape))
        ops.limit(shape)  # before torch allocates it
        ops.cost.work(ops, f"{name}() of {list(x.shape)}", spec.kind.multiply_adds(options, tuple(x.shape)))
        params = {p: self.env[f"{name}.{p}"] for p in spec.parameters}
        return spec.kind.functional(options, x, params)

    def step(self, step) -> tuple[int, ...]:
        """The shape of `step` (a StepSpec), the next one in the file; PresetError if it does not fit."""
        where = f"{self.label}: step {step.name!r} (steps[{self.steps}])"
        ops = CheckOps(self.env, lambda name, x: self._call_module(ops, name, x), PresetError, where, cost=self.cost)
        try:
            result = evaluate_step(step.expr.tree, ops)
        except PresetError as exc:
            msg = str(exc)
            raise PresetError(msg if msg.startswith(where) else f"{where}: {msg}") from None
        n = math.prod(result.shape)
        if n > limits.MAX_ELEMENTS_PER_TENSOR:
            raise PresetError(
                f"{where}: result has shape {list(result.shape)} ({n:,} elements); "
                f"the limit is {limits.MAX_ELEMENTS_PER_TENSOR:,}"
            )
        self.step_elements += n
        if self.step_elements > limits.MAX_ELEMENTS_TOTAL:
            raise PresetError(f"{where}: steps hold more than {limits.MAX_ELEMENTS_TOTAL:,} elements in all")
        self.env[step.name] = stand_in(result.shape, result.dtype)
        self.steps += 1
        return tuple(result.shape)

    def pass_cost(self) -> int:
        """What one forward pass costs: the larger of the elements made and the multiply-adds."""
        return max(self.cost.kept_elements, self.cost.multiply_adds, 1)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of every leaf and step checked so far."""
        return {name: tuple(t.shape) for name, t in self.env.items()}


def infer_shapes(preset, label: str) -> dict[str, tuple[int, ...]]:
    """Shape of every leaf and step; a PresetError names the step that does not fit."""
    check = ShapeCheck(preset.leaves, preset.modules, label)
    for step in preset.steps:
        check.step(step)
    return check.shapes()
