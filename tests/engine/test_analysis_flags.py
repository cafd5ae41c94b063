"""Flags with a one-line reason: dead ReLU, kinks, saturation, NaN/inf, exploding gradients."""

from __future__ import annotations

import numpy as np
import pytest

from backprop_tui.engine import Session, load_preset, parse_preset, resolve_preset
from backprop_tui.engine.analysis.custom import custom_preset
from backprop_tui.engine.analysis.flags import flags


def session(name: str) -> Session:
    return Session(load_preset(resolve_preset(name)))


def test_dead_relu_preset_flags_the_dead_unit_and_the_saturated_sigmoid():
    s = session("dead_relu")
    found = [f for f in flags(s) if f.kind != "relu_kink"]  # kinks: the next test
    assert [(f.kind, f.node, f.where) for f in found] == [
        ("dead_relu", "H", "unit 1 of relu(Z)"),
        ("saturated", "P", "sigmoid(logit)"),
    ]
    z = s.snapshot.node("Z").value
    assert (z[:, 1] <= 0).all() and not (z[:, [0, 2]] <= 0).all(axis=0).any()  # only unit 1 is dead
    assert "all 3 samples" in found[0].reason and "\n" not in found[0].reason
    assert "3 of 3 elements" in found[1].reason
    p = s.snapshot.node("P").value.astype(np.float64)
    assert (p * (1 - p) < 0.01).all()  # what "saturated" means


def test_a_relu_input_at_exactly_zero_is_flagged():
    s = session("dead_relu")
    s.set_element("hidden.bias", (2,), 0.0)
    assert s.snapshot.node("Z").value[0, 2] == 0.0  # -1·1 + 2·0.5 + 0
    (kink,) = [f for f in flags(s) if f.kind == "relu_kink"]
    assert kink.where == "relu(Z)" and "exactly 0 at [0,2]" in kink.reason


def test_a_leaky_relu_at_exactly_zero_states_the_slope_pytorch_takes_there():
    """leaky_relu is flagged at its kink, never as dead (a negative input still passes
    negative_slope of the gradient), and its slope at 0 is negative_slope, as autograd's."""
    s = Session(parse_preset(
        'output = "J"\n[tensors.z]\nrole = "parameter"\nvalue = [[0.0, -1.0], [-2.0, -3.0]]\n'
        '[[steps]]\nname = "a"\nexpr = "leaky_relu(z, negative_slope=0.2)"\n'
        '[[steps]]\nname = "J"\nexpr = "sum(a)"\n', source="leaky.toml"))
    (kink,) = flags(s)
    assert (kink.kind, kink.node, kink.where) == ("relu_kink", "a", "leaky_relu(z)")
    assert "exactly 0 at [0,0]" in kink.reason and "PyTorch uses leaky_relu'(0) = 0.2" in kink.reason
    assert s.snapshot.node("z").grad[0, 0] == pytest.approx(0.2)


def test_a_healthy_network_has_no_flags():
    assert flags(session("simple_nn")) == ()
    assert flags(session("scalar_chain")) == ()


def test_reviving_the_unit_clears_its_flag():
    s = session("dead_relu")
    s.set_element("hidden.bias", (1,), 0.0)
    assert "dead_relu" not in {f.kind for f in flags(s)}


def test_exploding_gradients_name_the_leaf_and_the_step_size():
    s = session("linear_regression")
    s.set_element("x", (), 3000.0)  # dJ/dw = d·x with d = 3000·3 + 1 - 5
    found = [f for f in flags(s) if f.kind == "exploding_grad"]
    assert [f.node for f in found] == ["w", "b"]
    assert float(s.snapshot.node("w").grad) == pytest.approx(8996 * 3000)
    assert "2.6988e+07" in found[0].reason and "lr 0.01" in found[0].reason


def test_nan_is_flagged():
    s = Session(custom_preset("log(x) * y", {"x": -1.0, "y": 2.0}))
    found = [f for f in flags(s) if f.kind == "nonfinite"]
    assert {f.node for f in found} >= {"t1", "f"}  # log(-1) is nan, and so is everything after it


def test_a_state_known_to_be_finite_skips_only_the_nan_check():
    # the inspector passes Snapshot.finite, so that a finite state skips the per-tensor check
    s = Session(custom_preset("log(x) * y", {"x": -1.0, "y": 2.0}))
    assert not s.snapshot.finite
    assert flags(s, finite=s.snapshot.finite) == flags(s)
    s.set_element("x", (), 2.0)
    assert s.snapshot.finite and flags(s, finite=True) == flags(s) == ()


def test_saturated_tanh():
    s = Session(custom_preset("tanh(w * x)", {"w": 2.0, "x": 2.0}))
    (flag,) = flags(s)
    assert flag.kind == "saturated" and flag.where == "tanh(t1)"
    s.set_element("x", (), 0.5)
    assert flags(s) == ()


def test_activations_inside_expressions_are_judged_too():
    p = parse_preset(
        'output = "f"\n[tensors.x]\nrole = "parameter"\nvalue = [1.0, -2.0]\n'
        '[[steps]]\nname = "f"\nexpr = "sum(relu(x * 2 - 3))"\n'
    )
    found = flags(Session(p))  # inputs 2·1 − 3 = −1 and 2·(−2) − 3 = −7: both units dead
    assert [(f.kind, f.where) for f in found] == [
        ("dead_relu", "unit 0 of relu(x * 2 - 3)"),
        ("dead_relu", "unit 1 of relu(x * 2 - 3)"),
    ]
    assert "its input -1 is ≤ 0" in found[0].reason
