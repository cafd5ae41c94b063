"""Training: N steps of SGD, and what happens to `.grad` when nobody zeroes it.

`train` runs on a private graph (so a UI worker thread never touches the session's
tensors) and reports each step through a callback that can cancel. With
`zero_grad=False` it does what a training loop without `optimizer.zero_grad()` does:
each backward *adds* into the `.grad` left by the previous one (PyTorch's AccumulateGrad),
and the update uses that growing sum. `accumulate_grads` shows the same in its purest
form: one forward, several backward calls, `.grad` read after each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from backprop_tui.engine.analysis.live import AnalysisError, State, check_cost, leaf_values, private_graph
from backprop_tui.engine.errors import BackpropError, ComputeError
from backprop_tui.engine.numbers import fmt

MAX_STEPS = 100_000
RECORD_LIMIT = 64  # per-step grads are kept when all trainable leaves hold at most this many numbers


@dataclass(frozen=True)
class TrainingStep:
    step: int  # 1 for the first update
    loss: float  # the loss at the values this step started from
    grad_norm: float  # ‖.grad‖ used by the update (the running sum when not zeroing)
    fresh_grad_norm: float  # ‖this backward's own gradient‖
    grads: dict[str, np.ndarray] = field(default_factory=dict)  # the .grad used; {} for big models


@dataclass(frozen=True)
class TrainingResult:
    losses: tuple[float, ...]  # before the first step, then after each (as Session.loss_history)
    steps: tuple[TrainingStep, ...]
    values: dict[str, np.ndarray]  # leaf values after the last completed step
    lr: float
    zero_grad: bool
    stopped: str  # "" when all steps ran, else "cancelled" or why it stopped

    @property
    def completed(self) -> int:
        return len(self.steps)


StepCallback = Callable[[TrainingStep], "bool | None"]


def train(
    state: State,
    steps: int,
    lr: float | None = None,
    zero_grad: bool = True,
    on_step: StepCallback | None = None,
) -> TrainingResult:
    """`steps` SGD updates θ ← θ − lr·θ.grad of every leaf that requires grad.

    `on_step` is called after each update; returning False stops (a UI worker passes
    `lambda s: not worker.is_cancelled` and posts progress from it). The session is not
    changed: apply `result.values` to it if the user keeps the result.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= MAX_STEPS:
        raise AnalysisError(f"steps must be a whole number from 0 to {MAX_STEPS}, got {steps!r}")
    lr = float(getattr(state, "learning_rate", state.preset.learning_rate) if lr is None else lr)
    if not (math.isfinite(lr) and lr > 0):
        raise AnalysisError(f"learning rate must be a positive finite number, got {lr!r}")
    flags = dict(state.requires_grad)
    trainable = [name for name, rg in flags.items() if rg]
    if not trainable:
        raise AnalysisError("no leaf requires grad: there is nothing to train")
    check_cost(state, f"{steps:,} training steps", passes=max(steps, 1))
    record = sum(state.values[n].numel() for n in trainable) <= RECORD_LIMIT

    graph = private_graph(state.preset)
    values = leaf_values(state)
    held: dict[str, torch.Tensor | None] = {n: None for n in trainable}  # .grad kept between steps
    losses: list[float] = []
    done: list[TrainingStep] = []
    stopped = ""
    for k in range(1, steps + 1):
        trace, fresh = _forward_backward(graph, values, flags, trainable, None if zero_grad else held)
        loss = float(trace.output.detach().reshape(-1)[0])
        losses.append(loss)
        grads = {n: trace.tensors[n].grad.detach().clone() for n in trainable if trace.tensors[n].grad is not None}
        with torch.no_grad():
            for n, g in grads.items():
                values[n] = values[n] - lr * g  # as Session.step does
        held = dict(grads)
        info = TrainingStep(
            k,
            loss,
            _norm(grads.values()),
            _norm(fresh.values()),
            {n: _array(g) for n, g in grads.items()} if record else {},
        )
        done.append(info)
        if not math.isfinite(loss):
            stopped = f"diverged: the loss is {fmt(loss)} at step {k}"
            break
        if on_step is not None and on_step(info) is False:
            stopped = "cancelled"
            break
    final = _loss(graph, values, flags)
    losses.append(final)
    if not stopped and not math.isfinite(final):
        stopped = f"diverged: the loss is {fmt(final)} after the last step"
    return TrainingResult(tuple(losses), tuple(done), {n: _array(v) for n, v in values.items()}, lr, zero_grad, stopped)


def _forward_backward(graph, values, flags, trainable, held):
    """One forward and backward; with `held`, the previous .grad is put back first so that
    AccumulateGrad adds this backward's gradient to it, exactly as without zero_grad()."""
    try:
        trace = graph.forward(dict(values), flags)
        if held is None:
            trace.output.backward()
            fresh = {n: trace.tensors[n].grad for n in trainable if trace.tensors[n].grad is not None}
        else:
            for n in trainable:
                # Graph.forward hands out fresh leaf tensors: give them the grad the old ones had
                trace.tensors[n].grad = None if held[n] is None else held[n].clone()
            before = {n: held[n] for n in trainable}
            trace.output.backward()
            fresh = {
                n: trace.tensors[n].grad - (0 if before[n] is None else before[n])
                for n in trainable
                if trace.tensors[n].grad is not None
            }
    except ComputeError:
        raise
    except (RuntimeError, ValueError, IndexError) as exc:
        raise ComputeError(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__) from None
    return trace, fresh


def _loss(graph, values, flags) -> float:
    try:
        with torch.no_grad():
            return float(graph.forward(dict(values), {n: False for n in flags}).output.reshape(-1)[0])
    except (BackpropError, RuntimeError, ValueError):
        return float("nan")


def _norm(tensors) -> float:
    return math.sqrt(sum(float((t.double() ** 2).sum()) for t in tensors))


def _array(tensor: torch.Tensor) -> np.ndarray:
    array = tensor.detach().numpy().copy()
    array.setflags(write=False)
    return array


# ---------------------------------------------------------------- backward without zeroing


@dataclass(frozen=True)
class Accumulation:
    single: dict[str, np.ndarray]  # one backward's gradient per leaf that requires grad
    after: tuple[dict[str, np.ndarray], ...]  # .grad after the 1st, 2nd, ... backward call
    lines: tuple[str, ...]  # "x.grad: 216, then 432 (2×), then 648 (3×)", a leaf each


def accumulate_grads(state: State, times: int = 3) -> Accumulation:
    """One forward, then `times` calls of backward(retain_graph=True) with no zeroing between."""
    if isinstance(times, bool) or not isinstance(times, int) or not 1 <= times <= 1000:
        raise AnalysisError(f"times must be a whole number from 1 to 1000, got {times!r}")
    flags = dict(state.requires_grad)
    names = [n for n, rg in flags.items() if rg]
    if not names:
        raise AnalysisError("no leaf requires grad: nothing accumulates")
    graph = private_graph(state.preset)
    trace = graph.forward(leaf_values(state), flags)
    after = []
    for _ in range(times):
        trace.output.backward(retain_graph=True)  # no zero_grad(): AccumulateGrad adds into .grad
        after.append({n: _array(trace.tensors[n].grad) for n in names if trace.tensors[n].grad is not None})
    single = after[0]
    return Accumulation(single, tuple(after), _growth_lines(single, after))


SHOWN_LEAVES = 8  # a dialog line each; a big network's other leaves grow alike


def _growth_lines(single: dict[str, np.ndarray], after: list[dict[str, np.ndarray]]) -> tuple[str, ...]:
    """One line per leaf: its .grad after each call, by its first element, and the multiple
    of the first call's it is ("w.grad: 39, then 78 (2×), then 117 (3×)")."""
    lines = []
    for name, first in single.items():
        if len(lines) == SHOWN_LEAVES:
            lines.append(f"… and {len(single) - SHOWN_LEAVES} more leaves, each alike")
            break
        index = "" if first.ndim == 0 else "[" + ",".join("0" * first.ndim) + "]"
        base = first.reshape(-1)[0]
        steps = [_short(base)]
        for k, grads in enumerate(after[1:], start=2):
            value = grads[name].reshape(-1)[0]
            steps.append(f"{_short(value)} ({'' if np.isclose(value, k * base, rtol=1e-5, atol=0) else '≠ '}{k}×)")
        alike = all(np.allclose(grads[name], k * first, rtol=1e-5, atol=0) for k, grads in enumerate(after, start=1))
        tail = "" if first.size == 1 or alike else "  (its other elements do not grow alike)"
        lines.append(f"{name}.grad{index}: " + ", then ".join(steps) + tail)
    return tuple(lines)


def _short(array: np.ndarray) -> str:
    from backprop_tui.engine.format import format_array

    return format_array(array, max_items=3)
