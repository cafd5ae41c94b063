"""The copy the autosave worker writes from holds everything the session's state holds."""

from __future__ import annotations

from backprop_tui.engine import Session, load_preset, resolve_preset
from backprop_tui.engine.autosave import state_dict
from backprop_tui.engine.exercise.progress import Progress
from backprop_tui.ui.persistence import StateCopy


def test_the_copy_writes_what_the_session_writes():
    session = Session(load_preset(resolve_preset("linear_regression")))
    session.nudge("w", (), 0.5)
    assert state_dict(StateCopy.of(session)) == state_dict(session)

    session.record_exercise(Progress().with_hint("J"), "hint for J")
    assert "exercise" in state_dict(session)
    assert state_dict(StateCopy.of(session)) == state_dict(session)
