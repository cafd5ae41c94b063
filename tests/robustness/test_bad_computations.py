"""Computations that go bad after an accepted edit, and recomputes torch refuses.

An accepted edit that makes nan or inf (log of a negative, exp overflowing float32, 0/0)
gives a snapshot with those values and a warning; the session keeps working and undo
brings back the finite state. An edit for which torch raises (a probability above 1), or
that the engine refuses before torch sees it (a class index out of range, -100 included),
is refused with EditError and changes nothing.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from backprop_tui.engine import EditError, Session
from robustness_support import FRAGILE_PRESET, bundled, one_step_preset, preset_from, state_of, unchanged


def values_of(snapshot) -> dict[str, np.ndarray]:
    return {n.name: n.value.copy() for n in snapshot.nodes}


def grads_of(snapshot) -> dict[str, np.ndarray | None]:
    return {n.name: None if n.grad is None else n.grad.copy() for n in snapshot.nodes}


def same_numbers(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        (a[k] is None and b[k] is None) or (a[k] is not None and b[k] is not None and np.array_equal(a[k], b[k]))
        for k in a
    )


# name -> (leaves, expression, edits that make it go bad, what the output becomes)
GOING_BAD = {
    "log of a negative": ({"x": "2.0"}, "log(x)", [("x", -1.0)], "nan"),
    "exp overflows float32": ({"x": "1.0"}, "exp(x)", [("x", 100.0)], "inf"),
    "zero over zero": ({"x": "1.0", "y": "2.0"}, "x / y", [("x", 0.0), ("y", 0.0)], "nan"),
    "sqrt of a negative": ({"x": "4.0"}, "sqrt(x)", [("x", -4.0)], "nan"),
    "one over zero": ({"x": "1.0", "y": "2.0"}, "x / y", [("y", 0.0)], "inf"),
}


@pytest.mark.parametrize("case", sorted(GOING_BAD))
def test_accepted_edit_goes_bad_then_undo(case):
    leaves, expr, edits, becomes = GOING_BAD[case]
    session = Session(one_step_preset(leaves, expr))
    finite_values, finite_grads = values_of(session.snapshot), grads_of(session.snapshot)
    assert session.snapshot.warnings == () and math.isfinite(session.snapshot.loss)

    for name, value in edits:
        session.set_element(name, (), value)
    loss = session.snapshot.loss
    assert math.isnan(loss) if becomes == "nan" else math.isinf(loss)
    assert "E holds nan or inf" in session.snapshot.warnings
    assert "J holds nan or inf" in session.snapshot.warnings
    assert not session.snapshot.finite

    # the session keeps working: another edit and an SGD step are still accepted, and undone
    session.set_element(edits[0][0], (), edits[0][1])
    session.step()
    for _ in range(len(edits) + 2):
        session.undo()
    assert session.snapshot.warnings == ()
    assert same_numbers(values_of(session.snapshot), finite_values)
    assert same_numbers(grads_of(session.snapshot), finite_grads)
    assert session.sgd_losses == [] and not session.undo_stack


def test_nan_from_sgd_on_a_bad_state_then_undo():
    """An SGD step on a nan gradient makes nan parameters; undo of both edits restores the finite ones."""
    session = Session(one_step_preset({"x": "4.0"}, "sqrt(x)"))
    session.set_element("x", (), -4.0)
    assert session.snapshot.warnings == (
        "the gradient of x holds nan or inf",
        "E holds nan or inf",
        "J holds nan or inf",
    )
    session.step()
    assert math.isnan(session.values["x"].item())
    assert any("x" in w for w in session.snapshot.warnings)
    session.undo()
    session.undo()
    assert session.values["x"].item() == 4.0 and session.snapshot.finite


# name -> (preset, edit, part of the message)
TORCH_REFUSES = {
    "class index past the classes": (
        "softmax_classifier", ("classes", (0,), 7),
        "classes[0] = 7: torch cannot compute this (step 'loss': class index out of range in cross_entropy(): "
        "7 is not a class of 0..2); nothing changed",
    ),
    "class index negative": (
        "softmax_classifier", ("classes", (2,), -1),
        "classes[2] = -1: torch cannot compute this (step 'loss': class index out of range in cross_entropy(): "
        "-1 is not a class of 0..2); nothing changed",
    ),
    "probability above 1": ("fragile", ("p", (0,), 1.5), "between 0 and 1"),
    "probability below 0": ("fragile", ("p", (1,), -0.25), "between 0 and 1"),
    "bce target above 1": ("fragile", ("y", (1,), 2.0), "between 0 and 1"),
    "fragile class index": (
        "fragile", ("classes", (1,), 3),
        "classes[1] = 3: torch cannot compute this (step 'C': class index out of range in cross_entropy(): "
        "3 is not a class of 0..2); nothing changed",
    ),
}


def _session(name: str) -> Session:
    return Session(preset_from(FRAGILE_PRESET) if name == "fragile" else bundled(name))


@pytest.mark.parametrize("case", sorted(TORCH_REFUSES))
def test_torch_refuses_the_recompute(case):
    preset, (name, index, value), message = TORCH_REFUSES[case]
    session = _session(preset)
    session.set_element(name, index, session.values[name][index].item())  # some undo history to keep
    before = state_of(session)
    with pytest.raises(EditError) as refused:
        session.set_element(name, index, value)
    text = str(refused.value)
    assert message in text and "nothing changed" in text and "\n" not in text
    assert unchanged(session, before)
    # and the session still works
    session.undo()
    assert not session.undo_stack


def test_sgd_step_torch_refuses_is_rolled_back():
    """An SGD step that pushes a probability past 1 is refused whole: values and loss history stay."""
    session = _session("fragile")
    session.step()
    session.set_learning_rate(100.0)
    before = state_of(session)
    with pytest.raises(EditError, match="between 0 and 1"):
        session.step()
    assert unchanged(session, before)
    assert len(session.sgd_losses) == 2 and session.steps_taken == 1


def test_reset_after_a_refused_edit():
    """After a refused edit, reset_all still returns to the preset's values."""
    session = _session("fragile")
    session.set_element("p", (0,), 0.9)
    with pytest.raises(EditError):
        session.set_element("p", (0,), 1.5)
    session.reset_all()
    assert session.values["p"].tolist() == [0.25, 0.75]


def test_class_index_minus_100_is_refused():
    """-100 is torch's ignore_index: cross_entropy would silently leave the sample out. Refused since 1515e9a."""
    session = _session("softmax_classifier")
    before = state_of(session)
    with pytest.raises(EditError) as refused:
        session.set_element("classes", (0,), -100)
    assert str(refused.value) == (
        "classes[0] = -100: torch cannot compute this (step 'loss': class index out of range in cross_entropy(): "
        "-100 is not a class of 0..2); nothing changed"
    )
    assert unchanged(session, before)
