"""What the app's teaching keys do (f, y, b, B), kept here so app.py stays a router.

Each takes a FrozenState of the session for its screen's worker, so edits made while
a screen is open cannot change what it computes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backprop_tui.ui.app import BackpropApp


def _widget(app: "BackpropApp", kind: type):
    """The screen's one widget of this kind, or None. query_one is cached by Textual;
    iterating app.query walks the whole DOM, about 0.5 ms per edit each."""
    from textual.css.query import NoMatches

    try:
        return app.query_one(kind)
    except NoMatches:
        return None


def _frozen(app: "BackpropApp"):
    from backprop_tui.engine.analysis.live import FrozenState

    return FrozenState.of(app.session)


def _inspected(app: "BackpropApp") -> tuple[str, tuple[int, ...] | None]:
    snapshot = app.session.snapshot
    name = app.inspected if app.inspected in snapshot else snapshot.output
    return name, app.inspected_index if name == app.inspected else None


def open_finite_differences(app: "BackpropApp") -> None:
    from backprop_tui.ui.screens.gradcheck import GradcheckScreen

    if app.session is not None:
        app.push_screen(GradcheckScreen(_frozen(app), app.session.snapshot.output))


def open_your_gradient(app: "BackpropApp") -> None:
    from backprop_tui.ui.screens.your_gradient import YourGradientScreen

    if app.session is not None:
        name, index = _inspected(app)
        app.push_screen(YourGradientScreen(app.session, name, index, app.cursor_blink))


def open_whole_tensor(app: "BackpropApp") -> None:
    from backprop_tui.ui.screens.whole_tensor import WholeTensorScreen

    if app.session is not None:
        name, _ = _inspected(app)
        app.push_screen(WholeTensorScreen(app.session.snapshot, name))


def open_step_through(app: "BackpropApp", mode: str) -> None:
    from backprop_tui.ui.screens.stepper import StepThroughScreen

    if app.session is not None:
        app.push_screen(StepThroughScreen(_frozen(app), app.session.snapshot.output, mode))


def analyse(app: "BackpropApp", name: str, before, index: tuple[int, ...] | None, edit: bool = False) -> None:
    """The inspector's chain rule and teaching sections for `name` (`edit`: see Inspector.request)."""
    from backprop_tui.engine.analysis.live import session_pass
    from backprop_tui.ui.widgets.inspector import Inspector, InspectorRequest

    # the inspector may be gone (the app closing with an Inspect message queued)
    inspector = _widget(app, Inspector)
    if inspector is not None:
        current = app.session.snapshot
        inspector.request(InspectorRequest(_frozen(app), current, name, before, index, edit),
                          shared=session_pass(app.session, current))
