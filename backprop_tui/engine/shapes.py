"""Shape checking on torch's "meta" device: every step runs without data or memory."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from backprop_tui.engine import limits
from backprop_tui.engine.errors import PresetError
from backprop_tui.engine.expr import evaluate
from backprop_tui.engine.ops import TorchOps, evaluate_step


class _MetaOps(TorchOps):
    """TorchOps on the meta device that also refuses any single operation past the limit,
    so `sum(v @ v.T)` cannot hide a 10^10-element matrix inside one step."""

    def _limited(self, result):
        if isinstance(result, torch.Tensor) and result.numel() > limits.MAX_ELEMENTS_PER_TENSOR:
            raise self.fail(
                "an operation makes too large a tensor",
                f"shape {list(result.shape)} ({result.numel():,} elements); the limit is {limits.MAX_ELEMENTS_PER_TENSOR:,}",
            )
        return result

    def binop(self, op, a, b):
        return self._limited(super().binop(op, a, b))

    def call(self, func, args, kwargs):
        return self._limited(super().call(func, args, kwargs))

    def module(self, name, x):
        return self._limited(super().module(name, x))


def check_module_input(name: str, in_features: int, x: torch.Tensor, error: type = PresetError) -> None:
    if x.dim() == 0 or x.shape[-1] != in_features:
        raise error(f"{name}() expects inputs with last dimension {in_features} (in_features), got shape {list(x.shape)}")
    if not x.is_floating_point():
        raise error(f"{name}() needs a float input, got an int tensor")


def infer_shapes(preset, label: str) -> dict[str, tuple[int, ...]]:
    """Shape of every leaf and step; a PresetError names the step that does not fit."""
    env: dict[str, torch.Tensor] = {}
    for leaf in preset.leaves:
        dtype = torch.int64 if leaf.dtype == "int" else torch.float32
        env[leaf.name] = torch.empty(leaf.shape, dtype=dtype, device="meta")
    modules = {m.name: m for m in preset.modules}

    def call_module(name: str, x: torch.Tensor) -> torch.Tensor:
        spec = modules[name]
        check_module_input(name, spec.in_features, x)
        bias = env.get(f"{name}.bias")
        return F.linear(x, env[f"{name}.weight"], bias)

    total = 0
    for i, step in enumerate(preset.steps):
        where = f"{label}: step {step.name!r} (steps[{i}])"
        ops = _MetaOps(env, call_module, PresetError, where, device="meta")
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
        env[step.name] = result
    return {name: tuple(t.shape) for name, t in env.items()}
