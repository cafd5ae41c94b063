"""A question with a few answers, each a button and a key: quit with unsaved edits,
restore an autosaved session, overwrite a file."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from backprop_tui.ui.screens.dialog import Dialog


@dataclass(frozen=True)
class Choice:
    id: str  # what the screen dismisses with
    label: str  # the button's text; `key` is shown beside it
    key: str  # one letter that chooses it
    variant: str = "default"


class ChoiceScreen(Dialog[str | None]):
    """Buttons (tab / arrows, enter) or one letter per answer; Escape answers `on_escape`."""

    DEFAULT_CSS = """
    ChoiceScreen .choice-box { height: auto; }
    ChoiceScreen .choice-title { margin-bottom: 1; }
    ChoiceScreen .choice-message { margin-bottom: 1; }
    ChoiceScreen .choice-buttons { height: auto; margin-bottom: 1; }
    ChoiceScreen .choice-buttons Button { margin-right: 2; }
    """

    BINDINGS = [
        Binding("escape", "escape", "Cancel", id="choice.cancel", tooltip="Close the question with its safe answer."),
        Binding("left", "app.focus_previous", show=False),
        Binding("right", "app.focus_next", show=False),
    ]

    def __init__(self, title: str, message: Text | str, choices: list[Choice], on_escape: str | None,
                 box_id: str = "choice-box", escape_label: str | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.message = message if isinstance(message, Text) else Text(message)
        self.choices = choices
        self.on_escape = on_escape
        self.box_id = box_id
        self.escape_label = escape_label
        self._answered = False

    def answer(self, result: str | None) -> None:
        """Dismiss once: a second key queued before the screen closed must not pop another screen."""
        if not self._answered:
            self._answered = True
            self.dismiss(result)

    def compose(self):
        with Vertical(classes="dialog choice-box", id=self.box_id):
            yield Static(Text(self.title_text, style="bold"), classes="choice-title")
            yield Static(self.message, classes="choice-message")
            with Horizontal(classes="choice-buttons"):
                for choice in self.choices:
                    yield Button(f"{choice.label} ({choice.key})", id=f"choice-{choice.id}", variant=choice.variant)
            keys = "  ".join(f"{c.key}: {c.label.lower()}" for c in self.choices)
            yield Static(Text(f"{keys}  esc: {self._escape_label()}", style="dim"), classes="choice-keys")

    def _escape_label(self) -> str:
        if self.escape_label:
            return self.escape_label
        for choice in self.choices:
            if choice.id == self.on_escape:
                return choice.label.lower()
        return "close"

    def on_mount(self) -> None:
        self.query_one(Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.answer(str(event.button.id).removeprefix("choice-"))

    def on_key(self, event: events.Key) -> None:
        for choice in self.choices:
            if event.key == choice.key:
                event.stop()
                event.prevent_default()
                self.answer(choice.id)
                return

    def action_escape(self) -> None:
        self.answer(self.on_escape)
