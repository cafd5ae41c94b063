"""Checking gradients: finite differences beside autograd, and "your gradient".

For a leaf element x, the central difference (f(x+h) − f(x−h)) / 2h is computed in
float64 on a float64 copy of the graph, and set beside autograd's float32 grad with the
absolute and relative difference. Where f has a kink at x (a ReLU input at exactly 0),
the slopes left and right of x differ and no derivative exists: such elements are
flagged "kink" with both slopes, neither reported as failures nor as agreeing. A kink is
found two ways: an element that moves the input of a function with a kink (the
registry's "kink" flag: relu, abs) off exactly 0, and, for kinks elsewhere, by shrinking
h: a curve's one-sided slopes close up with h, a kink's do not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch

from backprop_tui.engine.analysis.activations import KinkInput, kink_inputs
from backprop_tui.engine.analysis.live import (
    check_cost,
    AnalysisError,
    State,
    check_leaf_element,
    evaluate_output,
    leaf_values,
    private_graph,
    run_live,
)
from backprop_tui.engine.errors import BackpropError
from backprop_tui.engine.numbers import fmt
from backprop_tui.engine.session import Index, format_index
from backprop_tui.engine.snapshot import Snapshot

RTOL, ATOL = 1e-3, 1e-5  # float32 autograd against float64 differences
MAX_ELEMENTS = 256
STATUSES = ("ok", "mismatch", "kink", "nonfinite")


@dataclass(frozen=True)
class ElementCheck:
    leaf: str
    index: Index
    label: str  # "W1[0,1]"
    value: float
    autograd: float  # the grad as autograd computed it (float32, as in the snapshot)
    numeric: float  # central difference, float64
    left: float  # one-sided slopes with a small step, float64
    right: float
    abs_diff: float  # |numeric − autograd|
    rel_diff: float  # abs_diff / max(|numeric|, |autograd|)
    status: str  # one of STATUSES
    reason: str


@dataclass(frozen=True)
class GradCheck:
    elements: tuple[ElementCheck, ...]
    total: int  # elements of leaves with a grad
    checked: int  # how many of them were checked (at most max_elements)
    step: float  # the relative step h / max(1, |x|)
    summary: str

    def count(self, status: str) -> int:
        return sum(e.status == status for e in self.elements)

    @property
    def passed(self) -> bool:
        """No mismatch and nothing non-finite; kinks are not failures."""
        return self.count("mismatch") == 0 and self.count("nonfinite") == 0

    @property
    def verdict(self) -> str:
        """One line beside the summary: never "agree" for an element at a kink."""
        if not self.elements:
            return ""
        if not self.passed:
            return "disagreements found"
        kinks, ok = self.count("kink"), self.count("ok")
        if not kinks:
            return "all agree"
        at = f"{kinks} at a kink, where no derivative exists (autograd's number there is a convention)"
        return f"{at}; the other {ok} agree" if ok else at


def gradcheck(
    state: State,
    leaves: Iterable[str] | None = None,
    max_elements: int = MAX_ELEMENTS,
    rtol: float = RTOL,
    atol: float = ATOL,
    step: float = 1e-6,
) -> GradCheck:
    """Check the leaves that require grad (or `leaves`), at most `max_elements` elements.

    A tensor larger than its share of the budget is checked at evenly spaced elements.
    """
    check_cost(state, f"checking {max_elements} elements against finite differences", passes=2 * max_elements + 1)
    live = run_live(state)
    names = [
        n for n in (leaves if leaves is not None else state.values) if live.grad(n) is not None and live.has_grad(n)
    ]
    total = sum(state.values[n].numel() for n in names)
    checker = _Checker(state, live, rtol, atol, step)
    share = max(1, max_elements // max(1, len(names)))
    elements = []
    for name in names:
        numel = state.values[name].numel()
        flats = range(numel) if numel <= share else np.unique(np.linspace(0, numel - 1, share).round().astype(int))
        shape = tuple(state.values[name].shape)
        for flat in flats:
            index = tuple(int(i) for i in np.unravel_index(int(flat), shape)) if shape else ()
            elements.append(checker.check(name, index))
    result = tuple(elements)
    counts = {s: sum(e.status == s for e in result) for s in STATUSES}
    parts = [f"{counts[s]} {s}" for s in STATUSES if counts[s]]
    noun = "element" if total == 1 else "elements"
    checked = f"{len(result)} of {total} {noun}" if len(result) < total else f"{len(result)} {noun}"
    summary = f"finite differences on {checked}: " + (", ".join(parts) or "nothing to check")
    return GradCheck(result, total, len(result), step, summary)


def check_element(
    state: State, name: str, index: Index | None = None, rtol: float = RTOL, atol: float = ATOL, step: float = 1e-6
) -> ElementCheck:
    """One leaf element's check (the inspector's question for the selected element)."""
    index = check_leaf_element(state, name, index)
    live = run_live(state)
    if live.grad(name) is None or not live.has_grad(name):
        raise AnalysisError(f"{name} has no gradient to check: it does not require grad")
    return _Checker(state, live, rtol, atol, step).check(name, index)


class _Checker:
    def __init__(self, state: State, live, rtol: float, atol: float, step: float):
        self.live = live
        self.rtol, self.atol, self.step = rtol, atol, step
        self.graph = private_graph(state.preset, torch.float64)
        self.base = leaf_values(state, torch.float64)
        self.f0 = evaluate_output(self.graph, self.base)
        # the kink inputs exactly at 0 here (often none: then no element is at a kink)
        self.at_kink = [(k, k.input == 0) for k in self._kink_inputs(self.base)]
        self.at_kink = [(k, zero) for k, zero in self.at_kink if bool(zero.any())]

    def _kink_inputs(self, values: dict[str, torch.Tensor]) -> list[KinkInput]:
        try:
            with torch.no_grad():
                env = self.graph.forward(dict(values), {name: False for name in values}).tensors
                return kink_inputs(self.graph.preset, env)
        except (BackpropError, RuntimeError, ValueError, IndexError, KeyError):
            return []  # a call that cannot be evaluated apart: the slopes alone judge

    def kink_moved(self, name: str, index: Index, x: float, h: float) -> KinkInput | None:
        """The first kink input at exactly 0 that moving name[index] by ±h moves off 0."""
        for side in (x + h, x - h):
            if not self.at_kink:
                return None
            values = dict(self.base)
            values[name] = self.base[name].clone()
            values[name][index] = side
            moved = self._kink_inputs(values)
            for (kink, zero), after in zip(self.at_kink, moved):
                if after.input.shape == zero.shape and bool((after.input[zero] != 0).any()):
                    return kink
        return None

    def f(self, name: str, index: Index, value: float) -> float:
        values = dict(self.base)
        values[name] = self.base[name].clone()
        values[name][index] = value
        return evaluate_output(self.graph, values)

    def check(self, name: str, index: Index) -> ElementCheck:
        x = float(self.base[name][index])
        autograd = float(self.live.grad(name)[index])
        h = self.step * max(1.0, abs(x))
        fp, fm = self.f(name, index, x + h), self.f(name, index, x - h)
        q = h / 4
        fpq, fmq = self.f(name, index, x + q), self.f(name, index, x - q)
        numeric = (fp - fm) / (2 * h)
        right, left = (fpq - self.f0) / q, (self.f0 - fmq) / q
        jump_h = (fp - self.f0) / h - (self.f0 - fm) / h
        jump_q = right - left
        abs_diff = abs(numeric - autograd)
        scale = max(abs(numeric), abs(autograd))
        rel_diff = abs_diff / scale if scale > 0 else 0.0
        label = format_index(name, index)
        values = (numeric, autograd, left, right, self.f0)
        slopes = f"slope {fmt(left)} on the left, {fmt(right)} on the right; autograd picks {fmt(autograd)}"
        kink = self.kink_moved(name, index, x, h) if self.at_kink else None
        if not all(math.isfinite(v) for v in values):
            status, reason = "nonfinite", f"{label}: nan or inf in the output or its gradient here"
        elif kink is not None:
            status = "kink"
            reason = (
                f"{label}: at a kink, not differentiable here: {kink.func}({kink.arg}) in {kink.step} has input "
                f"exactly 0, and {label} moves it; {slopes}"
            )
        elif abs(jump_q) > self.atol + self.rtol * max(abs(left), abs(right)) and abs(jump_q) > 0.5 * abs(jump_h):
            status = "kink"
            reason = f"{label}: at a kink, not differentiable here (the slopes on either side differ): {slopes}"
        elif abs_diff <= self.atol + self.rtol * scale:
            status, reason = "ok", f"{label}: autograd {fmt(autograd)} and finite differences {fmt(numeric)} agree"
        else:
            status = "mismatch"
            reason = f"{label}: autograd {fmt(autograd)} but finite differences {fmt(numeric)} (off by {fmt(abs_diff)})"
        return ElementCheck(name, index, label, x, autograd, numeric, left, right, abs_diff, rel_diff, status, reason)


# ---------------------------------------------------------------- your gradient


@dataclass(frozen=True)
class YourGradient:
    label: str
    typed: float
    expected: float  # the grad autograd computed
    abs_diff: float
    rel_diff: float
    verdict: str  # "exact", "close" or "wrong"
    text: str


# A number rounded to 3 significant digits is within half a unit of its third digit: 0.5%.
YOUR_GRADIENT_RTOL = 5e-3
YOUR_GRADIENT_ATOL = 1e-6


def check_your_gradient(
    snapshot: Snapshot, name: str, index: Index | None, typed: float,
    rtol: float = YOUR_GRADIENT_RTOL, atol: float = YOUR_GRADIENT_ATOL,
) -> YourGradient:
    """Compare a hand-derived value with autograd's grad of `name[index]`.

    "exact" means equal as float32 numbers (typing 0.1 for a stored 0.1 is exact);
    "close" within rtol (relative) or atol; anything else is "wrong", with the difference.
    """
    if name not in snapshot:
        raise AnalysisError(f"unknown node {name!r}")
    node = snapshot.node(name)
    if node.grad is None:
        raise AnalysisError(f"{name} has no gradient: it does not require grad (or backward never reaches it)")
    if not index:
        if node.grad.size != 1:
            raise AnalysisError(f"{name} has shape {list(node.shape)}: choose one element")
        index = (0,) * node.grad.ndim
    try:
        expected = float(node.grad[tuple(index)])
    except (IndexError, TypeError):
        raise AnalysisError(
            f"{format_index(name, tuple(index))} is not an element of {name} (shape {list(node.shape)})"
        ) from None
    if not math.isfinite(typed):
        raise AnalysisError("type a finite number")
    label = f"∂{snapshot.output}/∂{format_index(name, tuple(index))}"
    abs_diff = abs(typed - expected)
    scale = max(abs(typed), abs(expected))
    rel_diff = abs_diff / scale if scale > 0 else 0.0
    if np.float32(typed) == np.float32(expected):
        verdict, text = "exact", f"{label} = {fmt(expected)}: exact"
    elif abs_diff <= atol + rtol * abs(expected):
        verdict, text = "close", f"{label} = {fmt(expected, 9)}: close (within {rtol:.1%}), off by {fmt(abs_diff)}"
    else:
        verdict, text = "wrong", f"{label} = {fmt(expected)}, not {fmt(typed)}: off by {fmt(abs_diff)}"
    return YourGradient(label, float(typed), expected, abs_diff, rel_diff, verdict, text)
