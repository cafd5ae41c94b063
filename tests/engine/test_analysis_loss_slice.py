"""The loss along one leaf element, with the tangent whose slope is the gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backprop_tui.engine import Session, load_preset, resolve_preset
from backprop_tui.engine.analysis.loss_slice import loss_slice


def session(name: str) -> Session:
    return Session(load_preset(resolve_preset(name)))


def test_scalar_chain_slice_is_the_function_and_its_tangent():
    s = session("scalar_chain")
    sl = loss_slice(s, "x", span=1.0, points=21)
    x = torch.tensor(sl.xs, dtype=torch.float32)
    np.testing.assert_allclose(sl.ys, (((x + 5) ** 3 + 1) ** 2).numpy(), rtol=1e-6)  # the real function
    assert (sl.x0, sl.y0, sl.slope) == (-3.0, 81.0, 216.0)
    assert sl.ys[10] == 81.0 and sl.xs[10] == -3.0
    np.testing.assert_allclose(sl.tangent, 81 + 216 * (sl.xs + 3))
    assert sl.grad_shown


@pytest.mark.parametrize(
    ("name", "leaf", "index"),
    [
        ("scalar_chain", "x", None),
        ("linear_regression", "w", None),
        ("simple_nn", "linear2.weight", (0, 2)),
        ("softmax_classifier", "classifier.bias", (1,)),
    ],
)
def test_tangent_slope_is_the_grad_and_the_curves_slope(name, leaf, index):
    s = session(name)
    grad = float(s.snapshot.node(leaf).grad[index or ()])
    sl = loss_slice(s, leaf, index)
    assert sl.slope == grad
    assert sl.y0 == s.snapshot.loss
    near = loss_slice(s, leaf, index, span=1e-2, points=3)  # the curve's own slope at x0
    secant = (near.ys[2] - near.ys[0]) / (near.xs[2] - near.xs[0])
    assert secant == pytest.approx(grad, rel=2e-3, abs=1e-4)


def test_slice_along_an_input_without_grad_still_has_its_slope():
    s = session("linear_regression")
    sl = loss_slice(s, "x", span=2.0, points=5)
    assert not sl.grad_shown and sl.slope == -39.0  # ∂J/∂x = d·w = -13·3
    w, b, y = 3.0, 1.0, 5.0
    np.testing.assert_allclose(sl.ys, (w * sl.xs + b - y) ** 2 / 2, rtol=1e-6)


def test_points_where_torch_gives_nan_stay_nan():
    from backprop_tui.engine.analysis.custom import custom_preset

    s = Session(custom_preset("log(x)", {"x": 0.5}))
    sl = loss_slice(s, "x", span=1.0, points=5)  # x from -0.5 to 1.5
    assert np.isnan(sl.ys[0]) and sl.ys[2] == pytest.approx(np.log(0.5)) and sl.slope == 2.0
