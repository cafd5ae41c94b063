"""The open preset's title and description: what the preset sets out to show."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from backprop_tui.ui.screens.dialog import Dialog


class AboutScreen(Dialog[None]):
    BINDINGS = [
        Binding("escape,enter,i", "close", "Close", id="about.close", tooltip="Back to the explorer."),
    ]

    def __init__(self, name: str, title: str, description: str) -> None:
        super().__init__()
        self.preset_name = name
        self.preset_title = title
        self.description = description

    def compose(self):
        with Vertical(id="about-box", classes="dialog"):
            yield Static(Text.assemble((self.preset_title, "bold"), ("  " + self.preset_name, "dim")))
            with VerticalScroll(id="about-text"):
                # Text, not markup: a description is the file's words, [brackets] included
                yield Static(Text(self.description.strip() or "This preset has no description."))
            yield Static(Text("esc: close", style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)
