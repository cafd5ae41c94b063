"""A one-line question (learning rate, a preset path) whose answer is checked before closing."""

from __future__ import annotations

from typing import Callable

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Label, Static

from backprop_tui.ui.screens.dialog import Dialog

Submit = Callable[[str], "str | None"]  # returns an error message, or None when accepted


class PromptScreen(Dialog[str | None]):
    """Enter submits; a refused answer shows its message and keeps the input; Escape cancels."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="prompt.cancel", tooltip="Close without changing anything."),
    ]

    def __init__(self, title: str, hint: str, value: str, submit: Submit, cursor_blink: bool = True) -> None:
        super().__init__()
        self.title_text = title
        self.hint = hint
        self.initial = value
        self.submit = submit
        self.cursor_blink = cursor_blink
        self._answered = False  # Enter twice, fast: the second must not dismiss (pop) another screen

    def _answer(self, value: str | None) -> None:
        if not self._answered:
            self._answered = True
            self.dismiss(value)

    def compose(self):
        with Vertical(classes="dialog", id="prompt-box"):
            yield Static(Text(self.title_text, style="bold"), id="prompt-title")
            yield Static(Text(self.hint, style="dim"), id="prompt-hint")
            yield Input(self.initial, id="prompt-input")
            yield Label(id="prompt-message")

    def on_mount(self) -> None:
        field = self.query_one(Input)
        field.cursor_blink = self.cursor_blink
        field.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._answered:
            return
        error = self.submit(event.value)
        if error is None:
            self._answer(event.value)
        else:
            self.query_one("#prompt-message", Label).update(Text(error, style="bold red"))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_one("#prompt-message", Label).update("")

    def action_cancel(self) -> None:
        self._answer(None)
