"""Finite differences in float64 beside autograd; kinks flagged, not failed; "your gradient"."""

from __future__ import annotations

import numpy as np
import pytest

from backprop_tui.engine import Session, load_preset, parse_preset, resolve_preset
from backprop_tui.engine.analysis import gradcheck as gradcheck_module
from backprop_tui.engine.analysis.gradcheck import check_element, check_your_gradient, gradcheck
from backprop_tui.engine.analysis.live import AnalysisError

# Z = relu input; with x = [1, 1], w = [1, -1] and b = 0 it is exactly 0: a kink.
KINK = """
output = "J"
[tensors.x]
role = "input"
value = [1.0, 1.0]
[tensors.w]
role = "parameter"
value = [1.0, -1.0]
[tensors.b]
role = "parameter"
value = 0.0
[tensors.v]
role = "parameter"
value = 2.0
[[steps]]
name = "Z"
expr = "sum(w * x) + b"
[[steps]]
name = "J"
expr = "(v * relu(Z) - 1)**2 + v**2"
"""


def session(name: str) -> Session:
    return Session(load_preset(resolve_preset(name)))


@pytest.mark.parametrize(
    "name", ["scalar_chain", "linear_regression", "gradient_accumulation", "simple_nn", "softmax_classifier"]
)
def test_autograd_agrees_with_finite_differences(name):
    s = session(name)
    check = gradcheck(s)
    assert check.passed and check.count("ok") == check.checked == check.total > 0
    for e in check.elements:
        assert e.autograd == float(s.snapshot.node(e.leaf).grad[e.index])
        assert e.abs_diff <= 1e-5 + 1e-3 * abs(e.autograd)


def test_scalar_chain_central_difference_is_216():
    e = check_element(session("scalar_chain"), "x")
    assert e.status == "ok" and e.label == "x"
    assert e.numeric == pytest.approx(216.0, rel=1e-8)  # float64: far closer than float32 could be
    assert e.left == pytest.approx(216.0, rel=1e-5) and e.right == pytest.approx(216.0, rel=1e-5)


def test_a_relu_input_at_exactly_zero_is_flagged_not_failed():
    s = Session(parse_preset(KINK))
    assert float(s.snapshot.node("Z").value) == 0.0
    check = gradcheck(s)
    status = {e.label: e.status for e in check.elements}
    assert status == {"w[0]": "kink", "w[1]": "kink", "b": "kink", "v": "ok"}
    assert check.passed
    b = next(e for e in check.elements if e.label == "b")
    # J = (v relu(Z) - 1)^2 + v^2: slope 0 for Z < 0, 2(v·0 - 1)·v = -4 for Z > 0; torch takes relu'(0) = 0
    assert b.autograd == 0.0
    assert b.left == pytest.approx(0.0, abs=1e-6) and b.right == pytest.approx(-4.0, rel=1e-4)
    assert "not differentiable" in b.reason
    s.set_element("b", (), 0.5)  # away from the kink everything agrees
    assert {e.status for e in gradcheck(s).elements} == {"ok"}


def test_dead_relu_with_z_at_zero_has_kinks_at_that_units_parameters():
    s = session("dead_relu")
    s.set_element("hidden.bias", (2,), 0.5)  # Z[:,2] away from 0
    assert {e.status for e in gradcheck(s).elements} == {"ok"}
    s.set_element("hidden.bias", (2,), 0.0)  # Z[0,2] = -1·1 + 2·0.5 + 0 = 0
    kinks = {e.label for e in gradcheck(s).elements if e.status == "kink"}
    assert kinks == {"hidden.weight[2,0]", "hidden.weight[2,1]", "hidden.bias[2]"}


def test_a_wrong_gradient_is_reported_as_a_mismatch(monkeypatch):
    real = gradcheck_module.run_live

    def corrupted(state, requires_grad=None):
        live = real(state, requires_grad)
        live.grads["w"] = live.grads["w"] * 1.01  # as if autograd were 1% off
        return live

    monkeypatch.setattr(gradcheck_module, "run_live", corrupted)
    check = gradcheck(session("linear_regression"))
    status = {e.label: e.status for e in check.elements}
    assert status == {"w": "mismatch", "b": "ok"} and not check.passed
    w = check.elements[0]
    assert w.rel_diff == pytest.approx(0.01 / 1.01, rel=1e-4)


def test_big_tensors_are_sampled_within_the_budget():
    check = gradcheck(session("mlp_784"), leaves=["linear3.bias", "linear1.weight"], max_elements=8)
    assert check.checked == 8 and check.total == 10 + 784 * 128
    assert check.passed


def test_leaves_without_grad_are_refused():
    with pytest.raises(AnalysisError, match="does not require grad"):
        check_element(session("linear_regression"), "x")


def test_your_gradient_exact_close_and_wrong():
    snap = session("scalar_chain").snapshot
    assert check_your_gradient(snap, "x", None, 216).verdict == "exact"
    close = check_your_gradient(snap, "x", None, 216.1)
    assert close.verdict == "close" and close.abs_diff == pytest.approx(0.1)
    wrong = check_your_gradient(snap, "x", (), 200.0)
    assert wrong.verdict == "wrong" and wrong.abs_diff == 16.0 and "off by 16" in wrong.text
    nn = session("simple_nn").snapshot
    typed = float(nn.node("A3").grad[1, 0])
    assert check_your_gradient(nn, "A3", (1, 0), round(typed, 9)).verdict == "exact"
    assert check_your_gradient(nn, "A3", (1, 0), round(typed, 4)).verdict == "close"
    with pytest.raises(AnalysisError, match="no gradient"):
        check_your_gradient(nn, "X", (0, 0), 1.0)
    with pytest.raises(AnalysisError, match="choose one element"):
        check_your_gradient(nn, "A3", None, 1.0)


@pytest.mark.parametrize("name", ["Z1", "A2", "A3", "linear1.weight", "linear2.bias"])
def test_your_gradient_rounded_to_three_significant_digits_is_close(name):
    nn = session("simple_nn").snapshot
    grad = nn.node(name).grad
    for index in np.ndindex(grad.shape):
        expected = float(grad[index])
        rounded = float(f"{expected:.3g}")
        verdict = check_your_gradient(nn, name, index, rounded)
        assert verdict.verdict in ("exact", "close"), (name, index, expected, rounded)
        if abs(expected) > 1e-4:  # 2% off is wrong, not close
            assert check_your_gradient(nn, name, index, expected * 1.02).verdict == "wrong"


def kink_preset(expr: str) -> Session:
    """J = expr of two parameters x and y, both 0: at the kinks of relu and abs."""
    tensors = "".join(f'[tensors.{n}]\nrole = "parameter"\nvalue = 0.0\n' for n in ("x", "y"))
    return Session(parse_preset(f'output = "J"\n{tensors}[[steps]]\nname = "J"\nexpr = "{expr}"\n'))


def test_a_kink_is_never_said_to_agree():
    check = gradcheck(kink_preset("relu(x)*3+abs(y)"))
    x, y = check.elements
    # relu(x)*3: slope 0 left of 0, 3 right of it, the central difference between them;
    # torch takes relu'(0) = 0 and sign(0) = 0
    assert (x.autograd, x.numeric, x.left, x.right) == (0.0, pytest.approx(1.5), pytest.approx(0), pytest.approx(3))
    # abs(y): the central difference 0 equals autograd's 0, and still no derivative exists
    assert (y.autograd, y.numeric, y.left, y.right) == (0.0, 0.0, pytest.approx(-1), pytest.approx(1))
    assert (x.status, y.status) == ("kink", "kink")
    assert "relu(x) in J has input exactly 0" in x.reason and "abs(y) in J has input exactly 0" in y.reason
    assert check.passed and "agree" not in check.verdict and "2 at a kink" in check.verdict
    assert "agree" not in x.reason + y.reason


def test_a_kink_too_shallow_for_the_slopes_is_found_from_the_graph():
    # relu(x)·1e-6: the slopes differ by 1e-6, under the tolerance; before, "ok ... agree"
    check = gradcheck(kink_preset("relu(x)*0.000001 + y*y"))
    assert {e.label: e.status for e in check.elements} == {"x": "kink", "y": "ok"}
    assert check.verdict == "1 at a kink, where no derivative exists (autograd's number there is a convention); " \
                            "the other 1 agree"
    s = kink_preset("relu(x)*0.000001 + y*y")
    s.set_element("x", (), 0.5)  # off the kink: both agree
    assert gradcheck(s).verdict == "all agree"
