"""Session: edits, undo/redo, SGD, and refused edits that change nothing.

Expected numbers are worked out by hand (linear regression: d = wx + b - y,
dJ/dw = d*x, dJ/db = d, dJ/dx = d*w) or with torch_reference.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import torch_reference as ref
from backprop_tui.engine import EditError, Session, parse_preset
from engine_support import bundled


def regression() -> Session:
    return Session(bundled("linear_regression"))


def scalars(snapshot, *names):
    return [snapshot.node(n).scalar() for n in names]


def state(session: Session):
    """Everything an edit may change, copied, to compare before and after."""
    return (
        {k: v.clone() for k, v in session.values.items()},
        dict(session.requires_grad),
        list(session.undo_stack),
        list(session.redo_stack),
        list(session.loss_history),
        session.snapshot,
    )


def assert_unchanged(session: Session, before) -> None:
    values, rg, undo, redo, history, snapshot = before
    assert session.values.keys() == values.keys()
    for k, v in values.items():
        assert torch.equal(session.values[k], v), k
    assert session.requires_grad == rg
    assert session.undo_stack == undo and session.redo_stack == redo
    assert session.loss_history == history
    assert session.snapshot is snapshot


# ---------------------------------------------------------------- edits


def test_set_element_recomputes():
    s = regression()
    snap = s.set_element("w", (), 2.0)
    assert snap is s.snapshot
    # d = 2*(-3) + 1 - 5 = -10, J = 50, dJ/dw = d*x = 30, dJ/db = -10
    assert scalars(snap, "c", "f", "d", "J") == [-6.0, -5.0, -10.0, 50.0]
    assert [snap.node(n).scalar_grad() for n in ("w", "b", "d")] == [30.0, -10.0, -10.0]
    assert snap.node("x").grad is None
    assert s.values["w"].item() == 2.0 and s.leaf_value("w") == 2.0


def test_set_element_of_a_matrix():
    s = Session(bundled("simple_nn"))
    snap = s.set_element("linear1.weight", (0, 1), 0.25)
    values = {leaf.name: np.array(leaf.initial) for leaf in s.preset.leaves}
    values["linear1.weight"][0, 1] = 0.25
    wrt = {leaf.name for leaf in s.preset.leaves if leaf.requires_grad}
    expected, grads = ref.gradients("simple_nn", values, wrt, dtype=torch.float32)
    assert snap.node("linear1.weight").value[0, 1] == 0.25
    np.testing.assert_allclose(snap.node("Z1").value, expected["Z1"].numpy(), rtol=1e-6)
    np.testing.assert_allclose(snap.node("J").value, expected["J"].numpy(), rtol=1e-5)
    np.testing.assert_allclose(snap.node("linear1.weight").grad, grads["linear1.weight"].numpy(), rtol=1e-4, atol=1e-8)


def test_edit_inputs_and_targets_too():
    s = regression()
    s.set_element("x", (), 2.0)  # d = 3*2 + 1 - 5 = 2
    s.set_element("y", (), 0.0)  # d = 7
    assert scalars(s.snapshot, "d", "J") == [7.0, 24.5]
    assert s.snapshot.node("w").scalar_grad() == 14.0


def test_old_snapshots_never_change():
    s = regression()
    first = s.snapshot
    s.set_element("w", (), 2.0)
    assert first.node("w").scalar() == 3.0 and first.node("J").scalar() == 84.5
    assert s.previous is first
    with pytest.raises(ValueError):
        first.node("w").value[...] = 7  # read-only arrays
    with pytest.raises(ValueError):
        first.node("w").grad[...] = 7


def test_nudge():
    s = regression()
    s.nudge("b", (), 0.5)
    assert s.values["b"].item() == 1.5
    assert s.snapshot.node("J").scalar() == (-12.5) ** 2 / 2


def test_toggle_requires_grad():
    s = regression()
    snap = s.toggle_requires_grad("x")
    assert snap.node("x").requires_grad is True
    assert snap.node("x").scalar_grad() == -39.0  # dJ/dx = d * w = -13 * 3
    snap = s.toggle_requires_grad("w")
    assert snap.node("w").grad is None and snap.node("w").requires_grad is False
    assert snap.node("c").scalar_grad() == -13.0  # c still depends on x, which requires grad
    s.toggle_requires_grad("x")
    snap = s.toggle_requires_grad("b")
    # nothing requires grad any more: no node has a gradient, and J has no grad_fn
    assert all(n.grad is None for n in snap.nodes)
    assert snap.node("J").grad_fn is None


def test_toggle_of_class_indices_is_refused():
    s = Session(bundled("softmax_classifier"))
    before = state(s)
    with pytest.raises(EditError, match="classes holds class indices"):
        s.toggle_requires_grad("classes")
    assert_unchanged(s, before)


def test_reset_leaf_and_reset_all():
    s = regression()
    s.set_element("w", (), 2.0)
    s.set_element("b", (), 0.0)
    s.toggle_requires_grad("x")
    s.reset_leaf("w")
    assert s.values["w"].item() == 3.0 and s.values["b"].item() == 0.0
    assert s.requires_grad["x"] is True
    s.reset_all()
    assert {k: v.item() for k, v in s.values.items()} == {"x": -3.0, "y": 5.0, "w": 3.0, "b": 1.0}
    assert s.requires_grad == {"x": False, "y": False, "w": True, "b": True}
    assert s.snapshot.node("J").scalar() == 84.5 and s.snapshot.node("x").grad is None


def test_reset_all_clears_the_step_count_and_loss_history_and_undo_brings_them_back():
    s = regression()
    s.step(0.01)
    s.step(0.01)
    history, steps = s.loss_history, s.steps_taken
    assert steps == 2 and len(history) == 3 and history[0] == 84.5
    s.reset_all()
    assert s.steps_taken == 0 and s.loss_history == [84.5] and s.sgd_losses == []
    s.undo()
    assert s.steps_taken == 2 and s.loss_history == history
    s.redo()
    assert s.steps_taken == 0 and s.loss_history == [84.5]
    s.step(0.01)  # a new history starts at the reset's loss
    assert s.steps_taken == 1 and s.loss_history[0] == 84.5 and len(s.loss_history) == 2


def test_reset_of_a_matrix_leaf():
    s = Session(bundled("simple_nn"))
    s.set_element("linear2.weight", (1, 2), 9.0)
    s.set_element("linear2.weight", (0, 0), -9.0)
    s.reset_leaf("linear2.weight")
    assert np.array_equal(s.snapshot.node("linear2.weight").value, bundled("simple_nn").leaf("linear2.weight").initial)
    np.testing.assert_allclose(s.snapshot.loss, 0.0130999, rtol=1e-5)


# ---------------------------------------------------------------- undo and redo


def test_undo_redo_walks_back_and_forth():
    s = regression()
    losses = [s.snapshot.loss]
    s.set_element("w", (), 2.0)
    losses.append(s.snapshot.loss)
    s.toggle_requires_grad("x")
    losses.append(s.snapshot.loss)
    s.reset_all()
    losses.append(s.snapshot.loss)
    assert losses == [84.5, 50.0, 50.0, 84.5]

    s.undo()  # undo reset all
    assert s.values["w"].item() == 2.0 and s.requires_grad["x"] is True
    assert s.snapshot.node("x").scalar_grad() == -20.0  # d * w = -10 * 2
    s.undo()  # undo the toggle
    assert s.requires_grad["x"] is False and s.snapshot.node("x").grad is None
    s.undo()  # undo w = 2
    assert s.snapshot.loss == 84.5 and s.values["w"].item() == 3.0
    assert not s.can_undo and s.can_redo
    with pytest.raises(EditError, match="nothing to undo"):
        s.undo()

    s.redo()
    assert s.values["w"].item() == 2.0 and s.snapshot.loss == 50.0
    s.redo()
    assert s.requires_grad["x"] is True
    s.redo()
    assert s.snapshot.loss == 84.5
    with pytest.raises(EditError, match="nothing to redo"):
        s.redo()


def test_new_edit_clears_redo():
    s = regression()
    s.set_element("w", (), 2.0)
    s.undo()
    assert s.can_redo
    s.set_element("b", (), 0.0)
    assert not s.can_redo
    s.undo()
    assert s.values["w"].item() == 3.0 and s.values["b"].item() == 1.0


def test_undo_of_element_edit_restores_the_exact_element():
    s = Session(bundled("simple_nn"))
    initial = s.snapshot
    s.set_element("linear1.bias", (2,), 0.123456789)
    s.set_element("linear1.bias", (2,), -5.0)
    s.undo()
    assert s.values["linear1.bias"][2].item() == np.float32(0.123456789)
    s.undo()
    assert np.array_equal(s.snapshot.node("linear1.bias").value, initial.node("linear1.bias").value)
    for node in initial.nodes:
        assert np.array_equal(s.snapshot.node(node.name).value, node.value), node.name


def test_dirty_and_mark_saved():
    s = regression()
    assert not s.dirty
    s.set_element("w", (), 2.0)
    assert s.dirty
    s.mark_saved()
    assert not s.dirty
    s.undo()
    assert s.dirty
    s.redo()
    assert not s.dirty


# ---------------------------------------------------------------- SGD


def test_step_is_theta_minus_lr_grad():
    s = regression()
    s.step(0.01)
    # w = 3 - 0.01 * 39, b = 1 - 0.01 * (-13); x and y do not require grad and stay
    assert s.values["w"].item() == pytest.approx(3 - 0.39, abs=1e-6)
    assert s.values["b"].item() == pytest.approx(1 + 0.13, abs=1e-6)
    assert s.values["x"].item() == -3.0 and s.values["y"].item() == 5.0
    d = (3 - 0.39) * -3 + 1.13 - 5
    assert s.snapshot.loss == pytest.approx(d * d / 2, rel=1e-6)
    assert s.loss_history == [84.5, pytest.approx(d * d / 2, rel=1e-6)]


def test_step_uses_the_preset_learning_rate_by_default():
    s = regression()
    assert s.learning_rate == bundled("linear_regression").learning_rate == 0.01
    s.step()
    assert s.values["w"].item() == pytest.approx(3 - 0.01 * 39, abs=1e-6)
    s.set_learning_rate(0.1)
    w, grad = s.values["w"].item(), s.snapshot.node("w").scalar_grad()
    s.step()
    assert s.values["w"].item() == pytest.approx(w - 0.1 * grad, abs=1e-6)


def test_step_moves_inputs_that_require_grad():
    s = Session(bundled("scalar_chain"))  # x is an input that requires grad
    s.step(0.001)
    assert s.values["x"].item() == pytest.approx(-3 - 0.001 * 216, abs=1e-6)


def test_loss_history_and_undo_of_steps():
    s = regression()
    assert s.loss_history == [84.5]
    for _ in range(3):
        s.step(0.01)
    history = s.loss_history
    assert len(history) == 4 and history[0] == 84.5
    assert all(b < a for a, b in zip(history, history[1:]))
    assert history[-1] == s.snapshot.loss
    assert s.steps_taken == 3
    s.undo()
    assert s.loss_history == history[:3] and s.steps_taken == 2
    assert s.snapshot.loss == pytest.approx(history[2])
    s.redo()
    assert s.loss_history == history
    s.undo(), s.undo(), s.undo()
    assert s.loss_history == [84.5] and s.steps_taken == 0
    assert s.values["w"].item() == 3.0


def test_refused_steps_change_nothing():
    s = regression()
    for lr in (0, -0.1, math.nan, math.inf, True, "0.1"):
        before = state(s)
        with pytest.raises(EditError, match="learning rate must be a positive finite number"):
            s.step(lr)
        assert_unchanged(s, before)
    s.toggle_requires_grad("w")
    s.toggle_requires_grad("b")
    before = state(s)
    with pytest.raises(EditError, match="nothing for SGD to update"):
        s.step(0.1)
    assert_unchanged(s, before)
    with pytest.raises(EditError):
        s.set_learning_rate(-1)
    assert s.learning_rate == 0.01


# ---------------------------------------------------------------- refused edits change nothing

REFUSED = [
    # (leaf, index, value, substring of the message)
    ("q", (), 1.0, "unknown leaf 'q'; leaves: x, y, w, b"),
    ("J", (), 1.0, "unknown leaf 'J'"),  # a step is not editable
    ("w", (0,), 1.0, "w is a scalar: give no index"),
    ("w", (), math.nan, "is not a finite number"),
    ("w", (), math.inf, "is not a finite number"),
    ("w", (), -math.inf, "is not a finite number"),
    ("w", (), 1e39, "is not a finite number in float32 range"),
    ("w", (), -1e39, "is not a finite number in float32 range"),
    ("w", (), True, "w: True is not a number"),
    ("w", (), "2", "w: '2' is not a number"),
    ("w", (), None, "w: None is not a number"),
]


@pytest.mark.parametrize(("name", "index", "value", "message"), REFUSED, ids=[str(r[:3]) for r in REFUSED])
def test_refused_edit_changes_nothing(name, index, value, message):
    s = regression()
    s.set_element("b", (), 0.0)  # something to undo
    s.set_element("b", (), 2.0)
    s.undo()  # and something to redo
    before = state(s)
    with pytest.raises(EditError) as info:
        s.set_element(name, index, value)
    assert message in str(info.value)
    assert_unchanged(s, before)


MATRIX_REFUSED = [
    ("linear1.weight", (0,), "linear1.weight has shape [3, 2]: give 2 index(es), got 1"),
    ("linear1.weight", (0, 0, 0), "give 2 index(es), got 3"),
    ("linear1.weight", (3, 0), "index 3 is out of range 0..2 in dimension 0"),
    ("linear1.weight", (0, 2), "index 2 is out of range 0..1 in dimension 1"),
    ("linear1.weight", (-1, 0), "index -1 is out of range"),
    ("linear1.weight", (True, 0), "out of range"),
    ("linear1.weight", (0.0, 0), "out of range"),
    ("linear1.bias", (), "give 1 index(es), got 0"),
]


@pytest.mark.parametrize(("name", "index", "message"), MATRIX_REFUSED, ids=[str(r[:2]) for r in MATRIX_REFUSED])
def test_bad_index_changes_nothing(name, index, message):
    s = Session(bundled("simple_nn"))
    before = state(s)
    with pytest.raises(EditError) as info:
        s.set_element(name, index, 1.0)
    assert message in str(info.value)
    assert_unchanged(s, before)


def test_class_index_must_be_whole():
    s = Session(bundled("softmax_classifier"))
    before = state(s)
    with pytest.raises(EditError, match="not a whole number"):
        s.set_element("classes", (0,), 1.5)
    assert_unchanged(s, before)
    s.set_element("classes", (0,), 2)
    assert s.values["classes"].tolist() == [2, 1, 2, 1]


# ---------------------------------------------------------------- torch refuses: rolled back


def test_class_index_out_of_range_is_rolled_back():
    s = Session(bundled("softmax_classifier"))
    s.set_element("X", (0, 0), 0.5)
    s.undo()
    before = state(s)
    for bad in (7, 3, -1):
        with pytest.raises(EditError) as info:
            s.set_element("classes", (0,), bad)
        assert "torch cannot compute this" in str(info.value) and "nothing changed" in str(info.value)
        assert "\n" not in str(info.value)
        assert_unchanged(s, before)
    # and the session still works
    s.set_element("classes", (0,), 1)
    assert s.values["classes"].tolist() == [1, 1, 2, 1]


BCE = """
output = "J"
[tensors.p]
role = "parameter"
value = [0.5, 0.25]
[tensors.t]
role = "target"
value = [1.0, 0.0]
[[steps]]
name = "J"
expr = "bce(p, t)"
"""


def test_bce_of_a_probability_above_one_is_rolled_back():
    s = Session(parse_preset(BCE, source="bce.toml"))
    expected = -(math.log(0.5) + math.log(0.75)) / 2
    assert s.snapshot.loss == pytest.approx(expected, rel=1e-6)
    before = state(s)
    for bad in (1.5, -0.5):
        with pytest.raises(EditError, match="p\\[0\\] = .*torch cannot compute this.*nothing changed"):
            s.set_element("p", (0,), bad)
        assert_unchanged(s, before)


def test_sgd_step_that_torch_refuses_is_rolled_back():
    s = Session(parse_preset(BCE, source="bce.toml"))
    s.set_element("p", (0,), 0.999)
    before = state(s)
    # dJ/dp0 = -1/(2 * 0.999): a step of lr 10 pushes p0 above 1, where bce is undefined
    with pytest.raises(EditError, match="nothing changed"):
        s.step(10.0)
    assert_unchanged(s, before)


def test_nan_from_a_valid_edit_is_reported_not_refused():
    """log of a negative number is nan, which torch computes; the snapshot says so."""
    text = 'output = "J"\n[tensors.x]\nrole = "parameter"\nvalue = 1.0\n[[steps]]\nname = "J"\nexpr = "log(x)"\n'
    s = Session(parse_preset(text, source="log.toml"))
    assert s.snapshot.finite
    snap = s.set_element("x", (), -1.0)
    assert math.isnan(snap.loss)
    assert not snap.finite and "J holds nan or inf" in snap.warnings


def test_apply_training_is_one_undoable_edit_with_its_losses():
    """A training run's result comes and goes with its losses and step count."""
    from backprop_tui.engine import Session, load_preset, resolve_preset

    reference = Session(load_preset(resolve_preset("linear_regression")))
    for _ in range(3):
        reference.step()
    session = Session(load_preset(resolve_preset("linear_regression")))
    values = {name: reference.values[name].clone() for name in ("w", "b")}
    session.apply_training(values, reference.loss_history, 3, "train 3 steps")
    assert session.snapshot.loss == reference.snapshot.loss
    assert session.loss_history == reference.loss_history
    assert session.steps_taken == 3
    session.step()
    assert len(session.loss_history) == 5  # the history went on from the run, nothing repeated
    session.undo()
    session.undo()
    assert session.snapshot.loss == 84.5
    assert session.steps_taken == 0
    assert session.loss_history == [84.5]
    session.redo()
    assert session.loss_history == reference.loss_history


def test_undoing_a_reset_all_brings_back_a_history_with_edits_between_the_steps():
    # found by the stateful test: a step after an edit records the loss before it as well
    s = Session(bundled("scalar_chain"))
    s.step()
    s.reset_leaf("x")
    s.step()
    history, steps = list(s.sgd_losses), s.steps_taken
    assert (len(history), steps) == (4, 2)
    s.reset_all()
    assert (s.sgd_losses, s.steps_taken) == ([], 0)
    s.undo()
    assert (s.sgd_losses, s.steps_taken) == (history, steps)
    s.redo()
    assert (s.sgd_losses, s.steps_taken) == ([], 0)
