"""A modal that shows one error message; the app behind it is unchanged."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Button, Static

from backprop_tui.ui.screens.dialog import Dialog


class ErrorDialog(Dialog[None]):
    BINDINGS = [
        Binding("escape,enter", "dismiss_dialog", "Close", id="error.close", tooltip="Close this message."),
    ]

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text = title
        self.message = message

    def compose(self):
        with Vertical(id="error-box", classes="dialog"):
            yield Static(Text(self.title_text, style="bold red"), id="error-title")
            # Text, not a str: a file name or message with [brackets] must not be read as markup
            yield Static(Text(self.message), id="error-message")
            yield Static(Text("The current preset is unchanged.", style="dim"))
            yield Button("OK", id="error-ok", variant="error")

    def on_mount(self) -> None:
        self.query_one(Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_dismiss_dialog(self) -> None:
        self.dismiss(None)
