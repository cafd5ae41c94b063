"""`y`: type a hand-derived gradient of the highlighted node; autograd judges it.

A number is judged for one element (the grid's cursor element, or the one typed in the
element field): exact, close (within the tolerance the dialog states) or wrong, by
analysis.gradcheck.check_your_gradient. Anything else is an expression for the whole
gradient tensor, in the preset language, judged as the exercise judges it (makemore's cmp,
with a diagnosis when it is wrong) and recorded in the session's exercise progress, so the
exercise screen, undo and autosave see it. The dialog stays open for another try.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Static

from backprop_tui.ui.screens.dialog import Dialog

if TYPE_CHECKING:
    from backprop_tui.engine import Session
    from backprop_tui.engine.snapshot import Snapshot

VERDICT_STYLE = {"exact": "bold green", "close": "bold yellow", "approximate": "bold yellow",
                 "wrong": "bold red", "error": "bold red"}
VERDICT_MARK = {"exact": "✓ exact", "close": "≈ close", "approximate": "≈ approximate",
                "wrong": "✗ wrong", "error": "✗ not checked"}


def element_of(snapshot: "Snapshot", name: str, index: tuple[int, ...] | None) -> tuple[int, ...] | None:
    """The element asked about: the grid's cursor element, else the first of a tensor."""
    shape = snapshot.node(name).shape
    if index and len(index) == len(shape):
        return tuple(index)
    return (0,) * len(shape) if shape else None


def parse_element(text: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """`1, 2` or `[1, 2]` (or `1 2`) as an element of a tensor of `shape`; ValueError saying why not."""
    parts = [p for p in re.split(r"[\s,]+", text.strip().strip("[]()").strip()) if p]
    if len(parts) != len(shape) or not all(re.fullmatch(r"-?\d{1,9}", p) for p in parts):
        raise ValueError(f"an element is {len(shape)} whole number{'s' * (len(shape) != 1)}, e.g. "
                         f"{', '.join('0' for _ in shape)} (shape {list(shape)})")
    index = tuple(int(p) for p in parts)
    for i, n in zip(index, shape):
        if not -n <= i < n:
            raise ValueError(f"[{', '.join(parts)}] is not an element of a tensor of shape {list(shape)}")
    return tuple(i % n for i, n in zip(index, shape))


class YourGradientScreen(Dialog[None]):
    BINDINGS = [
        Binding("escape", "close", "Close", id="your_gradient.close", tooltip="Close; your answers are kept."),
    ]

    DEFAULT_CSS = """
    #yg-box { width: 90%; max-width: 110; }
    #yg-element-row { height: auto; }
    #yg-element-row Label { padding: 1 1 0 0; }
    #yg-element { width: 20; }
    #yg-result { height: auto; margin-top: 1; width: 100%; }
    #yg-details { height: auto; width: 100%; }
    """

    def __init__(
        self, session: "Session", name: str, index: tuple[int, ...] | None, cursor_blink: bool = True
    ) -> None:
        super().__init__()
        self.session = session
        self.snapshot = session.snapshot
        self.node_name = name
        self.index = element_of(self.snapshot, name, index)
        self.cursor_blink = cursor_blink

    @property
    def output(self) -> str:
        return self.snapshot.output

    @property
    def many(self) -> bool:
        """Whether the node has more than one element (so a number is judged for one of them)."""
        return self.index is not None and int(self.snapshot.node(self.node_name).value.size) > 1

    def compose(self):
        from backprop_tui.engine.analysis.gradcheck import YOUR_GRADIENT_RTOL

        name = self.node_name
        with Vertical(classes="dialog", id="yg-box"):
            yield Static(Text.assemble(("Your gradient  ", "bold"), (f"∂{self.output}/∂{name}", "bold cyan")),
                         id="yg-title")
            hint = Text(style="dim")
            hint.append("Work it out by hand and type it; autograd checks it.\n")
            if self.many:
                hint.append(f"A number is checked for the element below (close: within {YOUR_GRADIENT_RTOL:.1%}). "
                            f"An expression is the whole ∂{self.output}/∂{name}: ")
            else:
                hint.append(f"A number is checked as is (close: within {YOUR_GRADIENT_RTOL:.1%}); an expression "
                            "as in the exercise: ")
            hint.append("forward values by name, your accepted gradients as d<name> (e.g. dh * (1 - h**2)).")
            yield Static(hint, id="yg-hint")
            if self.many:
                with Horizontal(id="yg-element-row"):
                    yield Label("element")
                    yield Input(", ".join(map(str, self.index)), id="yg-element")
            yield Input(placeholder="e.g. 39, -1.5e-3, or 2 * (p - y) / 3", id="yg-input")
            yield Label(id="yg-result")
            yield Label(id="yg-details")

    def on_mount(self) -> None:
        for field in self.query(Input):
            field.cursor_blink = self.cursor_blink
        self.query_one("#yg-input", Input).focus()
        if self.snapshot.node(self.node_name).grad is None:
            self._say(Text(f"{self.node_name} has no gradient: it does not require grad "
                           "(or backward never reaches it)", style="bold red"))

    def _say(self, result: Text, details: Text | str = "") -> None:
        self.query_one("#yg-result", Label).update(result)
        self.query_one("#yg-details", Label).update(details)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = self.query_one("#yg-input", Input).value
        if event.input.id == "yg-element" and not text.strip():
            self.query_one("#yg-input", Input).focus()
            return
        if not text.strip():
            return
        if self.many:
            try:
                shape = self.snapshot.node(self.node_name).shape
                self.index = parse_element(self.query_one("#yg-element", Input).value, shape)
            except ValueError as exc:
                self._say(Text(f"element: {exc}", style="bold red"))
                return
        from backprop_tui.engine.numbers import looks_like_number

        if looks_like_number(text):
            self.judge_number(text)
        else:
            self.judge_expression(text)

    def judge_number(self, text: str) -> None:
        from backprop_tui.engine import BackpropError
        from backprop_tui.engine.analysis.gradcheck import check_your_gradient
        from backprop_tui.engine.numbers import parse_number
        from backprop_tui.ui.format import fmt

        try:
            verdict = check_your_gradient(self.snapshot, self.node_name, self.index, parse_number(text))
        except BackpropError as exc:
            self._say(Text(str(exc), style="bold red"))
            return
        result = Text(f"{VERDICT_MARK[verdict.verdict]}: ", style=VERDICT_STYLE[verdict.verdict])
        result.append(verdict.text)
        details = Text.assemble(
            ("you typed ", "dim"), fmt(verdict.typed, 9),
            ("   autograd ", "dim"), fmt(verdict.expected, 9),
            ("   abs diff ", "dim"), fmt(verdict.abs_diff, 3),
            ("   rel diff ", "dim"), fmt(verdict.rel_diff, 3),
        )
        self._say(result, details)

    def judge_expression(self, text: str) -> None:
        """The whole gradient, as the exercise judges it; recorded in the session's progress."""
        from backprop_tui.engine.exercise import AnswerError, Exercise
        from backprop_tui.engine.exercise.exercise import recheck, submit
        from backprop_tui.engine.exercise.progress import Progress
        from backprop_tui.ui.format import fmt

        exercise = Exercise(self.session.preset, self.snapshot)
        progress, accepted = recheck(exercise, self.session.exercise or Progress())
        try:
            taken = submit(exercise, progress, accepted, self.node_name, text)
        except AnswerError as exc:
            self._say(Text(str(exc), style="bold red"))
            return
        verdict = taken.checked.verdict
        result = Text(f"{VERDICT_MARK[verdict.status]}: ", style=VERDICT_STYLE[verdict.status])
        if verdict.status == "error":
            result.append(verdict.diagnosis)
            self._say(result)
            return
        result.append(f"exact: {verdict.exact}   approximate: {verdict.approximate}   maxdiff: "
                      + ("-" if verdict.maxdiff is None else fmt(verdict.maxdiff, 3)))
        if not verdict.shape_ok and not verdict.diagnosis:
            result.append(f"\n{list(verdict.shape or ())} given, {list(verdict.expected_shape)} expected")
        if verdict.diagnosis:
            result.append("\n" + verdict.diagnosis)
        details = Text(style="dim")
        if verdict.grads_used:
            details.append(f"uses your {', '.join('d' + g for g in verdict.grads_used)}. ")
        if self.node_name in exercise.order:
            self.session.record_exercise(taken.progress, f"answer d{self.node_name}: {verdict.status}")
            self.app.keeper.changed()
            done = taken.progress.done(exercise.order)
            details.append(f"Kept in Backprop by hand (ctrl+p): {done} of {len(exercise.order)} done.")
        self._say(result, details)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()

    def action_close(self) -> None:
        self.dismiss(None)
