"""Warnings a learner should see, each with a one-line reason.

Dead ReLU units (input ≤ 0 for every sample: no gradient ever passes), ReLU inputs at
exactly 0 (the kink, where PyTorch picks relu'(0) = 0), saturated sigmoid or tanh (the
slope is so small that gradients through it nearly vanish), NaN or inf anywhere, and
exploding gradients (a leaf's grad so large that one SGD step would throw it far).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from backprop_tui.engine.analysis.activations import Activation, activations
from backprop_tui.engine.analysis.formulas import local_value
from backprop_tui.engine.analysis.live import State, run_live
from backprop_tui.engine.analysis.symbolic import show
from backprop_tui.engine.errors import BackpropError
from backprop_tui.engine.expr import Call, Ref
from backprop_tui.engine.functions import FUNCTIONS
from backprop_tui.engine.numbers import fmt

SATURATION_SLOPE = 0.01  # σ'(z) or tanh'(z) below this: |z| > 4.6 for σ, |z| > 3.0 for tanh
EXPLODING_GRAD = 1e3


@dataclass(frozen=True)
class Flag:
    kind: str  # "dead_relu", "relu_kink", "saturated", "nonfinite", "exploding_grad"
    node: str  # the step (or leaf) it concerns
    where: str  # "unit 1 of relu(Z)", "w", ...
    reason: str  # one line, shown as is


def flags(state: State, exploding: float = EXPLODING_GRAD, saturation: float = SATURATION_SLOPE,
          finite: bool = False) -> tuple[Flag, ...]:
    """All flags for the current values, in graph order within each kind.

    `finite=True` says that every value and gradient is known to be finite (a Snapshot
    of this state says so: `Snapshot.finite`), which skips looking at each of them again
    (deep_chain: 1,000 tensors, 3.6 ms).
    """
    found: list[Flag] = []
    live = run_live(state)
    if not finite:
        found += _nonfinite(live)
    try:
        acts = activations(state)
    except (BackpropError, RuntimeError, ValueError):  # nothing to judge; run_live would have failed first
        acts = ()
    for act in acts:
        if not act.flows:
            continue  # no gradient would pass through it anyway (constants, inputs only)
        kinds = FUNCTIONS[act.func].flags  # what the registry says this function can suffer
        if "dead" in kinds:
            found += _dead_relu(act)
        if "kink" in kinds:
            found += _kinks(act)
        if "saturates" in kinds:
            found += _saturated(act, saturation)
    found += _exploding(state, live, exploding)
    return tuple(found)


def _units(z: np.ndarray) -> tuple[np.ndarray, int]:
    """z as [samples, units]: the last dimension holds the units, the others the samples."""
    if z.ndim == 0:
        return z.reshape(1, 1), 1
    return z.reshape(-1, z.shape[-1]), int(np.prod(z.shape[:-1], dtype=np.int64))


def _dead_relu(act: Activation) -> list[Flag]:
    z, samples = _units(act.input)
    result = []
    for unit in np.flatnonzero((z <= 0).all(axis=0)):
        where = f"unit {unit} of relu({act.arg})" if z.shape[1] > 1 else f"relu({act.arg})"
        if samples > 1:
            why = (
                f"its input is ≤ 0 for all {samples} samples (max {fmt(float(z[:, unit].max()))}), "
                "so no gradient passes and what feeds it stops learning"
            )
        else:
            why = f"its input {fmt(float(z[0, unit]))} is ≤ 0, so relu'(z) = 0 and no gradient passes"
        result.append(Flag("dead_relu", act.step, where, f"dead ReLU in {act.step}: {where}: {why}"))
    return result


def _kinks(act: Activation) -> list[Flag]:
    zeros = np.argwhere(act.input == 0)
    if not len(zeros):
        return []
    first = ",".join(map(str, zeros[0])) if act.input.ndim else ""
    at = f" at [{first}]" if first else ""
    more = f" and {len(zeros) - 1} more" if len(zeros) > 1 else ""
    where = f"{act.func}({act.arg})"
    at_zero = float(local_value(act.func, 0, [torch.zeros((), dtype=torch.float64)], act.kwargs))
    reason = (
        f"{where} in {act.step} has input exactly 0{at}{more}: not differentiable there; "
        f"PyTorch uses {act.func}'(0) = {fmt(at_zero)}, while the slopes on either side differ"
    )
    return [Flag("relu_kink", act.step, where, reason)]


def _saturated(act: Activation, threshold: float) -> list[Flag]:
    # the slope as the inspector writes it: the registry's local derivative, at z
    z = torch.from_numpy(act.input.astype(np.float64))
    slope = local_value(act.func, 0, [z], act.kwargs).numpy()
    hit = slope < threshold
    if not hit.any():
        return []
    symbol = f"{show(Call(act.func, (Ref('z'),)), display=True)}'".replace("(z)'", "'(z)")
    where = f"{act.func}({act.arg})"
    reason = (
        f"saturated {act.func} in {act.step}: {int(hit.sum())} of {hit.size} elements have {symbol} < {fmt(threshold)} "
        f"(smallest {fmt(float(slope.min()))} at |z| up to {fmt(float(np.abs(act.input).max()))}), "
        "so gradients through it nearly vanish"
    )
    return [Flag("saturated", act.step, where, reason)]


def _nonfinite(live) -> list[Flag]:
    floats = [t.detach().reshape(-1) for t in live.trace.tensors.values() if t.is_floating_point()]
    floats += [g.reshape(-1) for name in live.trace.tensors if (g := live.grad(name)) is not None]
    if not floats or bool(torch.cat(floats).isfinite().all()):
        return []  # the usual case, in one check (deep_chain: one instead of a thousand)
    result = []
    for name, tensor in live.trace.tensors.items():
        value = tensor.detach()
        if value.is_floating_point() and not bool(value.isfinite().all()):
            result.append(
                Flag(
                    "nonfinite",
                    name,
                    name,
                    f"{name} holds nan or inf: {_count_bad(value)} elements; everything computed from it is unreliable",
                )
            )
        grad = live.grad(name)
        if grad is not None and not bool(grad.isfinite().all()):
            result.append(
                Flag("nonfinite", name, name, f"the gradient of {name} holds nan or inf ({_count_bad(grad)} elements)")
            )
    return result


def _count_bad(tensor) -> str:
    return f"{int((~tensor.isfinite()).sum())} of {tensor.numel()}"


def _exploding(state: State, live, threshold: float) -> list[Flag]:
    lr = float(getattr(state, "learning_rate", state.preset.learning_rate))
    out = state.preset.output
    result = []
    for leaf in state.preset.leaves:
        grad = live.grad(leaf.name)
        if grad is None or not live.has_grad(leaf.name):
            continue
        g = grad.abs()
        g = g[g.isfinite()]
        peak = float(g.max()) if g.numel() else 0.0
        if peak > threshold:
            reason = (
                f"exploding gradient: |∂{out}/∂{leaf.name}| reaches {fmt(peak)} (> {fmt(threshold)}); "
                f"one SGD step with lr {fmt(lr)} would move it by up to {fmt(lr * peak)}"
            )
            result.append(Flag("exploding_grad", leaf.name, leaf.name, reason))
    return result
