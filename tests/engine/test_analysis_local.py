"""Local derivatives in words, symbols and torch's numbers; the chain rule line; symbolic printing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from backprop_tui.engine import Session, load_preset, resolve_preset
from backprop_tui.engine.analysis.local import chain_rule, local_derivatives
from backprop_tui.engine.analysis.symbolic import derivative, is_elementwise, is_pointwise, show
from backprop_tui.engine.errors import ComputeError
from backprop_tui.engine.expr import BinOp, Call, Neg, Num, Ref, evaluate, parse_expression
from backprop_tui.engine.ops import TorchOps


def session(name: str) -> Session:
    return Session(load_preset(resolve_preset(name)))


def by_input(s: Session, node: str) -> dict:
    return {d.input: d for d in local_derivatives(s, node)}


def test_scalar_chain_local_derivatives_read_like_the_seed():
    s = session("scalar_chain")
    (dg,) = local_derivatives(s, "f")
    assert dg.text == "d/dg g² = 2g = 18"
    assert dg.formula == "2g" and dg.value == 18.0 and dg.used
    (dh,) = local_derivatives(s, "g")
    assert dh.text == "d/dh (h³ + 1) = 3h² = 12" and dh.value == 12.0
    (dx,) = local_derivatives(s, "h")
    assert dx.value == 1.0 and dx.text == "d/dx (x + 5) = 1"
    assert local_derivatives(s, "x") == ()  # a leaf has no inputs


def test_scalar_chain_chain_rule_lines():
    s = session("scalar_chain")
    assert chain_rule(s, "h").text == "∂f/∂h = ∂f/∂g · ∂g/∂h = 18 · 12 = 216"
    assert chain_rule(s, "x").text == "∂f/∂x = ∂f/∂h · ∂h/∂x = 216 · 1 = 216"
    assert chain_rule(s, "g").text == "∂f/∂g = 2g = 18"
    assert chain_rule(s, "f").text.startswith("∂f/∂f = 1")
    s.set_element("x", (), -4.0)  # h = 1, g = 2: ∂f/∂g = 4, ∂g/∂h = 3
    assert chain_rule(s, "h").text == "∂f/∂h = ∂f/∂g · ∂g/∂h = 4 · 3 = 12"


def test_chain_rule_sums_over_consumers_with_the_direct_term():
    s = session("gradient_accumulation")
    rule = chain_rule(s, "x")
    assert rule.text == "∂f/∂x = ∂f/∂p · ∂p/∂x + ∂f/∂x (direct) = 1 · 3 + 1 = 4"
    assert [t.consumer for t in rule.terms] == ["p", "f"]
    assert sum(float(t.contribution) for t in rule.terms) == float(rule.grad) == 4.0


def test_inputs_without_grad_have_a_local_derivative_that_is_not_used():
    s = session("linear_regression")
    d = by_input(s, "c")
    assert d["w"].text == "d/dw w·x = x = -3" and d["w"].used
    assert d["x"].text == "d/dx w·x = w = 3" and not d["x"].used
    assert chain_rule(s, "w").text == "∂J/∂w = ∂J/∂c · ∂c/∂w = -13 · -3 = 39"
    assert "does not require grad" in chain_rule(s, "x").text
    assert by_input(s, "J")["d"].text == "d/dd d²/2 = d = -13"


def test_relu_local_jacobian_is_the_mask_of_positive_inputs():
    s = session("dead_relu")
    (d,) = local_derivatives(s, "H")
    assert "relu'(z) = 1 if z > 0 else 0" in d.rule and d.formula == "relu'(Z)"
    z = s.snapshot.node("Z").value
    jac = d.jacobian.reshape(z.size, z.size)
    np.testing.assert_array_equal(jac, np.diag((z > 0).reshape(-1).astype(float)))


def test_sigmoid_local_jacobian_is_s_times_one_minus_s():
    s = session("simple_nn")
    (d,) = local_derivatives(s, "A3")
    assert "σ'(z) = σ(z)(1 − σ(z))" in d.rule and d.formula == "σ(Z3)(1 − σ(Z3))"
    z = torch.tensor(s.snapshot.node("Z3").value, dtype=torch.float64)
    slope = (torch.sigmoid(z) * (1 - torch.sigmoid(z))).reshape(-1).numpy()
    np.testing.assert_allclose(np.diag(d.jacobian.reshape(2, 2)), slope, rtol=1e-6)


def test_pointwise_local_derivatives_carry_their_values_at_every_element():
    s = session("dead_relu")
    (d,) = local_derivatives(s, "H")
    z = s.snapshot.node("Z").value
    np.testing.assert_array_equal(d.elementwise, (z > 0).astype(np.float32))  # the ReLU mask
    assert d.text.endswith("element by element (the 3×3×3×3 Jacobian is diagonal)")
    (d,) = local_derivatives(session("simple_nn"), "A3")
    z3 = torch.tensor(session("simple_nn").snapshot.node("Z3").value, dtype=torch.float64)
    np.testing.assert_allclose(d.elementwise, torch.sigmoid(z3) * (1 - torch.sigmoid(z3)), rtol=1e-6)


@pytest.mark.parametrize("preset", sorted(p.stem for p in resolve_preset("simple_nn").parent.glob("*.toml")))
def test_every_pointwise_value_is_autograds_diagonal(preset):
    # the registry's formulas evaluated element by element against autograd on the step alone
    from backprop_tui.engine.analysis.live import run_live

    s = session(preset)
    live = run_live(s)
    checked = 0
    for step in s.preset.steps:
        for d in local_derivatives(s, step.name):
            if d.elementwise is None:
                continue
            local = live.local(step.name)
            x = local.inputs[d.input]
            (diagonal,) = torch.autograd.grad(local.output, x, torch.ones_like(local.output), retain_graph=True)
            np.testing.assert_allclose(d.elementwise, diagonal.numpy(), rtol=1e-5, atol=1e-7, err_msg=d.text)
            assert d.elementwise.shape == tuple(x.shape)
            checked += 1
    if preset in ("simple_nn", "dead_relu", "mlp_784", "tiny_cnn"):
        assert checked > 0


def test_scalar_output_of_tensors_gives_the_gradient_as_value():
    s = session("simple_nn")
    d = by_input(s, "J")["A3"]
    assert d.formula == "0.5(A3 − Y)"
    expected = 0.5 * (s.snapshot.node("A3").value - s.snapshot.node("Y").value)
    np.testing.assert_allclose(d.jacobian, expected, rtol=1e-6)
    linear = by_input(s, "Z1")
    assert "∂Z1[i,j]/∂W[j,k] = X[i,k]" in linear["linear1.weight"].text
    assert linear["linear1.weight"].jacobian.shape == (2, 3, 3, 2)


# ---------------------------------------------------------------- symbolic printing and derivatives


def test_show_parses_back_to_the_same_tree():
    texts = ["-x**2", "(-x)**2", "x**-1", "x**y**z", "(x**y)**z", "a - (b - c)", "a / (b * c)", "(a + b).T",
             "-(a * b)", "sum((A3 - Y)**2) / (2 * 2)", "softmax(z, dim=1)", "mse(p, y, reduction='sum')", "-3 * x"]
    for text in texts:
        tree = parse_expression(text).tree
        assert parse_expression(show(tree)).tree == tree, text


def test_display_style():
    assert show(parse_expression("sigmoid(z) * (1 - sigmoid(z))").tree, display=True) == "σ(z)(1 − σ(z))"
    assert show(parse_expression("((x+5)**3+1)**2").tree, display=True) == "((x + 5)³ + 1)²"
    assert not is_elementwise(parse_expression("linear1(X)", {"linear1"}).tree)


_names = st.sampled_from(["x", "y"])
_leaf = st.one_of(_names.map(Ref), st.sampled_from([0.5, 2.0, 3.0]).map(Num))


def _extend(children):
    return st.one_of(
        st.tuples(st.sampled_from(["+", "-", "*", "/"]), children, children).map(lambda t: BinOp(*t)),
        st.tuples(children, st.sampled_from([2.0, 3.0])).map(lambda t: BinOp("**", t[0], Num(t[1]))),
        children.map(Neg),
        st.tuples(st.sampled_from(["tanh", "sigmoid", "exp"]), children).map(lambda t: Call(t[0], (t[1],))),
    )


@settings(max_examples=60, deadline=None)
@given(tree=st.recursive(_leaf, _extend, max_leaves=6), x=st.floats(0.2, 2) | st.floats(-2, -0.2), y=st.floats(0.5, 2))
def test_symbolic_derivative_evaluates_to_autograds_number(tree, x, y):
    env = {"x": torch.tensor(x, dtype=torch.float64, requires_grad=True), "y": torch.tensor(y, dtype=torch.float64)}
    ops = TorchOps(env, None, ComputeError, "test")
    try:
        value = torch.as_tensor(evaluate(tree, ops))  # a tree of constants is a plain number
    except ComputeError:  # torch refuses it (0.5 / (0.5 - 0.5)): no derivative to compare
        return
    if not value.requires_grad or not torch.isfinite(value):
        return
    (expected,) = torch.autograd.grad(value, env["x"])
    formula = parse_expression(show(derivative(tree, "x"))).tree  # what is shown, read back
    got = evaluate(formula, TorchOps({k: v.detach() for k, v in env.items()}, None, ComputeError, "test"))
    if math.isfinite(float(expected)) and abs(float(expected)) < 1e6:
        assert float(got) == pytest.approx(float(expected), rel=1e-6, abs=1e-8)


def test_unknown_nodes_are_one_clear_error():
    from backprop_tui.engine.analysis.contributions import node_contributions
    from backprop_tui.engine.analysis.live import AnalysisError

    s = session("scalar_chain")
    for call in (lambda: chain_rule(s, "q"), lambda: local_derivatives(s, "q"), lambda: node_contributions(s, "q")):
        with pytest.raises(AnalysisError, match="unknown node 'q'"):
            call()


@pytest.mark.parametrize("preset", ["simple_nn", "scalar_chain", "dead_relu"])
def test_a_live_pass_keeps_its_gradients_while_autograd_is_asked_again(preset):
    # Live.grads are the .grad tensors themselves (no copy): asking autograd.grad through
    # the retained graph afterwards (Jacobians, paths, contributions) must not change them
    from backprop_tui.engine.analysis.contributions import contributions
    from backprop_tui.engine.analysis.live import FrozenState, jacobian, run_live
    from backprop_tui.engine.analysis.paths import paths

    s = Session(load_preset(resolve_preset(preset)))
    state = FrozenState.of(s)
    live = run_live(state)  # the pass the analyses below share
    before = {name: None if g is None else g.clone() for name, g in live.grads.items()}
    assert any(g is not None for g in before.values())
    for tensor in live.trace.tensors.values():
        if tensor.requires_grad:
            jacobian(live.trace.output, tensor)
    contributions(state)
    for leaf in s.preset.leaves:
        if leaf.requires_grad:
            paths(state, leaf.name, (0,) * len(leaf.shape))
    assert run_live(state) is live
    for name, grad in before.items():
        assert (grad is None) == (live.grad(name) is None), name
        if grad is not None:
            assert torch.equal(live.grad(name), grad), name
            assert np.array_equal(grad.numpy(), s.snapshot.node(name).grad), name


def same(a, b) -> bool:
    """Equal, looking into dataclasses, containers and arrays (exactly, NaN equal to NaN)."""
    import dataclasses

    if dataclasses.is_dataclass(a) and type(a) is type(b):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, (np.ndarray, torch.Tensor)) or isinstance(b, (np.ndarray, torch.Tensor)):
        return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("preset", ["scalar_chain", "linear_regression", "simple_nn", "dead_relu", "softmax_classifier",
                                    "gradient_accumulation", "deep_chain"])
def test_analyses_on_the_sessions_own_pass_equal_those_on_a_pass_of_their_own(preset):
    # the inspector's in-edit analyses read the session's pass (session_pass) instead of
    # running one more: every result must be what a private pass gives
    from backprop_tui.engine.analysis.contributions import contributions
    from backprop_tui.engine.analysis.flags import flags
    from backprop_tui.engine.analysis.live import FrozenState, session_pass, share_pass
    from backprop_tui.engine.analysis.paths import paths

    s = Session(load_preset(resolve_preset(preset)))
    leaf = s.preset.leaves[0]
    s.nudge(leaf.name, (0,) * len(leaf.shape), 0.25)
    shared = session_pass(s, s.snapshot)
    assert shared is not None
    on_session, private = FrozenState.of(s), FrozenState.of(s)
    share_pass(on_session, shared)
    for node in s.snapshot.nodes[:40]:
        assert same(chain_rule(on_session, node.name), chain_rule(private, node.name)), node.name
    assert same(flags(on_session), flags(private))
    assert same(contributions(on_session), contributions(private))
    if len(s.snapshot.nodes) < 100:
        for other in s.preset.leaves:
            if other.dtype == "float":
                index = (0,) * len(other.shape)
                assert same(paths(on_session, other.name, index), paths(private, other.name, index)), other.name
    assert next(iter(on_session.lives.values())) is shared  # the analyses did read it
    snapshot = s.snapshot
    s.nudge(leaf.name, (0,) * len(leaf.shape), 0.25)
    assert session_pass(s, snapshot) is None and session_pass(s, s.snapshot) is not None  # one edit later: gone


def test_what_a_preset_derives_is_made_once_and_leaves_it_equal():
    preset = load_preset(resolve_preset("scalar_chain"))
    made = []
    first = preset.derived("_test_value", lambda: made.append(1) or [1, 2])
    assert preset.derived("_test_value", lambda: made.append(1) or [3]) is first and made == [1]
    assert preset == load_preset(resolve_preset("scalar_chain")) and "_test_value" not in repr(preset)


@pytest.mark.parametrize("text, pointwise", [
    ("relu(Z1)", True), ("(A3 - Y)**2 / 4", True), ("-sigmoid(z) * exp(x)", True),
    ("sum((A3 - Y)**2)", False), ("linear1(X)", False), ("x @ w", False), ("x.T", False), ("softmax(z)", False),
    ("mse(p, y)", False),
])
def test_pointwise_means_no_element_reaches_another(text, pointwise):
    assert is_pointwise(parse_expression(text, {"linear1"}).tree) is pointwise


@pytest.mark.parametrize("preset", ["simple_nn", "dead_relu", "scalar_chain", "gradient_accumulation"])
def test_a_pointwise_steps_diagonal_jacobian_is_the_row_by_row_one(preset):
    # one vjp with ones (LocalStep.jacobian of a pointwise step) against one autograd.grad
    # per output element (live.jacobian): the same numbers, off-diagonal zeros included
    from backprop_tui.engine.analysis.live import jacobian, run_live

    s = session(preset)
    live = run_live(s)
    checked = 0
    for step in s.preset.steps:
        local = live.local(step.name)
        for name, tensor in local.inputs.items():
            if tensor.is_floating_point():
                by_rows = jacobian(local.output, tensor)
                assert np.array_equal(local.jacobian(name), by_rows), (step.name, name)
                checked += local.pointwise and tensor.shape == local.output.shape
    assert checked  # some step took the diagonal way


def test_a_pointwise_step_with_a_broadcast_input_asks_row_by_row():
    # Z + b with b of shape [3] under Z of shape [2,3]: each b[j] reaches two elements, so
    # the Jacobian with respect to b is not diagonal (and not square)
    from backprop_tui.engine.analysis.live import LocalStep

    z = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    local = LocalStep("A", {"Z": z, "b": b}, torch.tanh(z + b), pointwise=True)
    expected = (1 - torch.tanh(z + b) ** 2).detach()
    assert np.allclose(local.jacobian("b"), np.stack([np.diag(row) for row in expected.numpy()]))
    assert np.allclose(local.jacobian("Z").reshape(6, 6), np.diag(expected.reshape(-1).numpy()))


# The derivative each loss's rule states for its target, written out here as code: the
# rule's text must say it, and it must be autograd's number.
TARGET_RULES = {
    "mse": ("∂/∂y = 2(y − p)/N", lambda p, y: 2 * (y - p) / p.numel()),
    "bce": ("∂/∂y = (log(1 − p) − log p)/N", lambda p, y: (torch.log(1 - p) - torch.log(p)) / p.numel()),
    "bce_with_logits": ("∂/∂y = −z/N", lambda z, y: -z / z.numel()),
}


@pytest.mark.parametrize("loss", sorted(TARGET_RULES))
def test_a_loss_rule_states_the_targets_derivative_as_autograd_computes_it(loss):
    from backprop_tui.engine.analysis.symbolic import RULES

    words, formula = TARGET_RULES[loss]
    assert words in RULES[loss]
    torch.manual_seed(0)
    for _ in range(5):
        first = torch.rand(3, 2, dtype=torch.float64) * 0.9 + 0.05
        if loss == "bce_with_logits":
            first = torch.randn(3, 2, dtype=torch.float64)
        target = (torch.rand(3, 2, dtype=torch.float64) * 0.9 + 0.05).requires_grad_()
        torch_loss = {
            "mse": torch.nn.functional.mse_loss,
            "bce": torch.nn.functional.binary_cross_entropy,
            "bce_with_logits": torch.nn.functional.binary_cross_entropy_with_logits,
        }[loss]
        value = torch_loss(first, target)
        (grad,) = torch.autograd.grad(value, target)
        torch.testing.assert_close(grad, formula(first, target.detach()))


def test_the_inspector_states_each_new_functions_derivative_and_autograd_gives_its_numbers():
    """gelu's formula Φ(z) + z·φ(z) (at a scalar, the number autograd gives), leaky_relu's
    slope, and cat's, transpose's and flatten's rules in words beside their Jacobians."""
    from backprop_tui.engine import parse_preset

    s = Session(parse_preset(
        'output = "J"\n[tensors.z]\nrole = "parameter"\nvalue = 0.7\n'
        '[tensors.a]\nrole = "parameter"\nvalue = [[1.0, -2.0], [0.5, 3.0]]\n'
        '[[steps]]\nname = "g"\nexpr = "gelu(z)"\n'
        '[[steps]]\nname = "r"\nexpr = "leaky_relu(z, negative_slope=0.3)"\n'
        '[[steps]]\nname = "c"\nexpr = "cat(a, transpose(a, 0, 1), dim=1)"\n'
        '[[steps]]\nname = "f"\nexpr = "flatten(c)"\n'
        '[[steps]]\nname = "J"\nexpr = "g + r + sum(f ** 2)"\n', source="new.toml"))
    z = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(torch.nn.functional.gelu(z), z)
    (dg,) = local_derivatives(s, "g")
    assert dg.formula == "Φ(z) + z·φ(z)" and dg.value == pytest.approx(float(slope), rel=1e-6)
    assert dg.text.startswith("d/dz gelu(z) = Φ(z) + z·φ(z)  [gelu'(z) = Φ(z) + z·φ(z)")
    (dr,) = local_derivatives(s, "r")
    assert dr.value == 1.0 and "leaky_relu'(z) = 1 if z > 0 else negative_slope" in dr.text
    (dc,) = local_derivatives(s, "c")
    assert "cat: the incoming grad is cut along dim" in dc.text and "transpose: the incoming grad" in dc.text
    # c[i, j] is a[i, j] for j < 2 and a[j - 2, i] after: the Jacobian has a 1 at each place
    expected = torch.zeros(2, 4, 2, 2)
    for i in range(2):
        for j in range(2):
            expected[i, j, i, j] = 1
            expected[i, j + 2, j, i] = 1
    np.testing.assert_array_equal(dc.jacobian, expected.numpy())
    (df,) = local_derivatives(s, "f")
    assert "flatten: the incoming grad is reshaped back to the input's shape" in df.text
    np.testing.assert_array_equal(df.jacobian.reshape(8, 8), np.eye(8))
