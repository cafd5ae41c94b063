"""ctrl+s: the path of the preset file to write the edited state to."""

from __future__ import annotations

from typing import Callable

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Label, Static

from backprop_tui.ui.screens.dialog import Dialog


class SavePresetScreen(Dialog[str | None]):
    """Enter saves to the typed path (checked by the app: an existing file asks first); Escape cancels."""

    DEFAULT_CSS = """
    SavePresetScreen #save-box { height: auto; }
    SavePresetScreen #save-hint { margin-bottom: 1; }
    SavePresetScreen #save-message { height: auto; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="save.cancel", tooltip="Close without saving."),
    ]

    def __init__(self, preset: str, default_path: str, cursor_blink: bool = True, quitting: bool = False,
                 check: Callable[[str], str | None] | None = None) -> None:
        super().__init__()
        self.check = check  # the path's problem in one line, or None: shown here, beside the input
        self.preset = preset
        self.default_path = default_path
        self.cursor_blink = cursor_blink
        self.quitting = quitting
        self._answered = False

    def compose(self):
        with Vertical(classes="dialog", id="save-box"):
            yield Static(Text(f"Save {self.preset} with your edits as a new preset file", style="bold"),
                         id="save-title")
            hint = "a .toml path; an existing file is never replaced without asking; not inside the bundled presets"
            if self.quitting:
                hint += "; the explorer quits once it is saved"
            yield Static(Text(hint, style="dim"), id="save-hint")
            yield Input(self.default_path, id="save-input", select_on_focus=False)
            yield Label(Text("enter: save  esc: cancel", style="dim"), id="save-message")

    def on_mount(self) -> None:
        field = self.query_one(Input)
        field.cursor_blink = self.cursor_blink
        field.focus()
        field.cursor_position = len(field.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        path = event.value.strip()
        if not path:
            self.query_one("#save-message", Label).update(
                Text("enter the path of the new preset file", style="bold red")
            )
            return
        if "\n" in path or "\r" in path or "\0" in path:
            self.query_one("#save-message", Label).update(Text("a path is one line", style="bold red"))
            return
        problem = self.check(path) if self.check is not None else None
        if problem:
            self.query_one("#save-message", Label).update(Text(problem, style="bold red"))
            return
        if not self._answered:
            self._answered = True
            self.dismiss(path)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_one("#save-message", Label).update(Text("enter: save  esc: cancel", style="dim"))

    def action_cancel(self) -> None:
        if not self._answered:
            self._answered = True
            self.dismiss(None)
