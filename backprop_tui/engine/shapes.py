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
their operands (broadcasting, '@', a module, indexing by an int tensor) have their output shape worked out
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


class _CheckOps(TorchOps):
    """TorchOps on stand-ins that also refuses any single operation past the limit, before
    torch allocates it, so `sum(v @ v.T)` cannot hide a 10^10-element matrix inside one step."""

    check_values = False

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

    def _stand_in(self, result: Any) -> Any:
        if not isinstance(result, torch.Tensor):
            return result  # a Python number (constants)
        self.limit(tuple(result.shape))  # a second look, should an operation be missed above
        return stand_in(result.shape, result.dtype)

    def _binary(self, op, a, b):
        if op == "@":
            self.limit(_matmul_shape(tuple(a.shape), tuple(b.shape)))
        elif isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
            self.limit(broadcast(tuple(a.shape), tuple(b.shape)))
        return super()._binary(op, a, b)

    def binop(self, op, a, b):
        return self._stand_in(super().binop(op, a, b))

    def neg(self, a):
        return self._stand_in(super().neg(a))

    def transpose(self, a):
        return self._stand_in(super().transpose(a))

    def call(self, func, args, kwargs):
        return self._stand_in(super().call(func, args, kwargs))

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


def infer_shapes(preset, label: str) -> dict[str, tuple[int, ...]]:
    """Shape of every leaf and step; a PresetError names the step that does not fit."""
    env: dict[str, torch.Tensor] = {}
    for leaf in preset.leaves:
        env[leaf.name] = stand_in(leaf.shape, torch.int64 if leaf.dtype == "int" else torch.float32)
    modules = {m.name: m for m in preset.modules}
    ops: _CheckOps

    def call_module(name: str, x: torch.Tensor) -> torch.Tensor:
        spec = modules[name]
        check_module_input(spec, x, check_values=False)
        options = dict(spec.options)
        ops.limit(spec.kind.output_shape(options, tuple(x.shape)))  # before torch allocates it
        params = {p: env[f"{name}.{p}"] for p in spec.parameters}
        return spec.kind.functional(options, x, params)

    total = 0
    for i, step in enumerate(preset.steps):
        where = f"{label}: step {step.name!r} (steps[{i}])"
        ops = _CheckOps(env, call_module, PresetError, where)
        try:
            result = evaluate_step(step.expr.tree, ops)
        except PresetError as exc:
            msg = str(exc)
            raise PresetError(msg if msg.startswith(where) else f"{where}: {msg}") from None
        n = math.prod(result.shape)
        if n > limits.MAX_ELEMENTS_PER_TENSOR:
            raise PresetError(
                f"{where}: result has shape {list(result.shape)} ({n:,} elements); the limit is {limits.MAX_ELEMENTS_PER_TENSOR:,}"
            )
        total += n
        if total > limits.MAX_ELEMENTS_TOTAL:
            raise PresetError(f"{where}: steps hold more than {limits.MAX_ELEMENTS_TOTAL:,} elements in all")
        env[step.name] = stand_in(result.shape, result.dtype)
    return {name: tuple(t.shape) for name, t in env.items()}
