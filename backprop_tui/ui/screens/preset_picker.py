"""Pick one of the bundled presets."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from backprop_tui.ui.screens.dialog import Dialog


class PresetPicker(Dialog[str | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="picker.cancel", tooltip="Keep the current preset."),
    ]

    def __init__(self, presets: list[tuple[str, str]], current: str | None) -> None:
        """`presets`: (name, title) pairs."""
        super().__init__()
        self.presets = presets
        self.current = current

    def compose(self):
        with Vertical(classes="dialog", id="picker-box"):
            yield Static(Text("Open a bundled preset", style="bold"))
            options = []
            for name, title in self.presets:
                prompt = Text(name, style="bold")
                if name == self.current:
                    prompt.append(" (open)", style="dim")
                prompt.append(f"\n  {title}", style="dim")
                options.append(Option(prompt, id=name))
            yield OptionList(*options, id="picker-list")
            yield Static(Text("enter: open  esc: cancel  o: open a file by path", style="dim"))

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        names = [name for name, _ in self.presets]
        options.highlighted = names.index(self.current) if self.current in names else 0
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
