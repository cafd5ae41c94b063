"""The output along one leaf element, with the tangent whose slope is the gradient.

Holding every other value fixed, the output is a function of one number, x. Plotting it
over a range around the current x, with the line through the current point whose slope
is autograd's ∂output/∂x, shows what a gradient *is*: the slope of that curve, here.
Every point is the real graph run forward with x replaced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from backprop_tui.engine.analysis.live import (
    check_cost,
    State,
    all_float_leaves,
    check_leaf_element,
    evaluate_output,
    leaf_values,
    private_graph,
    run_live,
)
from backprop_tui.engine.numbers import fmt
from backprop_tui.engine.session import Index, format_index

MAX_POINTS = 2001


@dataclass(frozen=True)
class LossSlice:
    label: str  # "W1[0,1]"
    output: str
    x0: float  # the element's current value
    y0: float  # the output there
    slope: float  # ∂output/∂x from autograd (the tangent's slope)
    grad_shown: bool  # False when the leaf does not require grad (the UI shows no grad for it)
    xs: np.ndarray
    ys: np.ndarray  # nan where torch cannot compute (log of a negative, ...)
    tangent: np.ndarray  # y0 + slope·(xs − x0)
    text: str


def loss_slice(
    state: State, name: str, index: Index | None = None, span: float | None = None, points: int = 41
) -> LossSlice:
    """The output at `points` values of `name[index]` from x0 − span to x0 + span.

    `span` defaults to max(1, |x0|) / 2, wide enough to see the curve bend and narrow
    enough to stay near the current point.
    """
    index = check_leaf_element(state, name, index)
    points = max(3, min(int(points), MAX_POINTS))
    check_cost(state, f"the loss along {points} values of {format_index(name, index)}", passes=points + 1)
    base = leaf_values(state)
    x0 = float(base[name][index])
    span = max(1.0, abs(x0)) / 2 if span is None else float(span)
    if not (math.isfinite(span) and span > 0):
        raise ValueError(f"span must be a positive number, got {span!r}")

    live = run_live(state, all_float_leaves(state))  # the slope also where x does not require grad
    grad = live.grad(name)
    slope = float(grad[index]) if grad is not None else 0.0
    y0 = float(live.trace.output.detach().reshape(-1)[0])

    graph = private_graph(state.preset)
    # the leaf holds float32: use the float32 numbers the graph will really see
    xs = np.linspace(x0 - span, x0 + span, points).astype(np.float32).astype(np.float64)
    ys = np.empty(points)
    for k, x in enumerate(xs):
        values = dict(base)
        values[name] = base[name].clone()
        values[name][index] = float(x)
        ys[k] = evaluate_output(graph, values)
    tangent = y0 + slope * (xs - x0)
    for array in (xs, ys, tangent):
        array.setflags(write=False)
    label = format_index(name, index)
    out = state.preset.output
    text = (
        f"{out} along {label} from {fmt(xs[0])} to {fmt(xs[-1])}; at {label} = {fmt(x0)}, {out} = {fmt(y0)} "
        f"and the tangent's slope is ∂{out}/∂{label} = {fmt(slope)}"
    )
    return LossSlice(label, out, x0, y0, slope, bool(state.requires_grad.get(name)), xs, ys, tangent, text)
