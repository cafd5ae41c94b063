"""Your own expression: type it and its starting values, get a live graph at once.

The text goes through engine.analysis.custom (the same safe parser and validation as a
preset file). Enter builds the Preset and a Session; a refusal shows its one-line reason
under the inputs and changes nothing. On success the screen is dismissed with the new
Session, and the app opens it like any preset.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Label, Static

from backprop_tui.ui.screens.dialog import Dialog

if TYPE_CHECKING:
    pass

DEFAULT_EXPRESSION = "((x+5)**3+1)**2"
DEFAULT_VALUES = "x=-3"
HINT = ("One expression, e.g. ((x+5)**3+1)**2, or assignments: h = x + 5; g = h**3 + 1; f = g**2 "
        "(the last one is the output). Operators + - * / ** @, functions such as exp, log, tanh, relu.")
VALUES_HINT = "Starting values: name=number, separated by commas, e.g. x=-3, y=2 (a list: w=[1, 2])"

_VALUE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\[[^\]]*\]|[^,;\[\]]+?)\s*(?:[,;]|$)")


def parse_values(text: str) -> dict[str, float | list[float]]:
    """`x=-3, y=2, w=[1, 2]` as {name: number or list}; PresetError saying what is wrong."""
    from backprop_tui.engine.errors import EditError, PresetError
    from backprop_tui.engine.numbers import parse_number

    values: dict[str, float | list[float]] = {}
    position = 0
    text = text.strip()
    while position < len(text):
        match = _VALUE.match(text, position)
        if not match:
            rest = text[position:].strip()
            raise PresetError(f"values: cannot read {rest!r}; write name=number, e.g. x=-3, y=2")
        name, raw = match.group(1), match.group(2).strip()
        if name in values:
            raise PresetError(f"values: {name} is given twice")
        try:
            if raw.startswith("["):
                items = [item for item in raw[1:-1].split(",") if item.strip()]
                if not items:
                    raise EditError("an empty list")
                values[name] = [parse_number(item) for item in items]
            else:
                values[name] = parse_number(raw)
        except EditError as exc:
            raise PresetError(f"values: {name}: {exc}") from None
        position = match.end()
    return values


class CustomExpressionScreen(Dialog["Session | None"]):
    DEFAULT_CSS = """
    CustomExpressionScreen #custom-box { width: 90; max-width: 96%; }
    CustomExpressionScreen .custom-hint { color: $text-muted; height: auto; }
    CustomExpressionScreen #custom-names { height: auto; margin-bottom: 1; }
    CustomExpressionScreen #custom-message { height: auto; width: 100%; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="custom.cancel", tooltip="Close; the current preset stays."),
    ]

    def __init__(self, expression: str = DEFAULT_EXPRESSION, values: str = DEFAULT_VALUES,
                 cursor_blink: bool = True) -> None:
        super().__init__()
        self.expression = expression
        self.values_text = values
        self.cursor_blink = cursor_blink

    def compose(self):
        with Vertical(id="custom-box", classes="dialog"):
            yield Static(Text("Your own expression", style="bold"), id="custom-title")
            yield Static(Text(HINT), classes="custom-hint")
            yield Input(self.expression, id="custom-expr", placeholder="((x+5)**3+1)**2")
            yield Static(id="custom-names")
            yield Static(Text(VALUES_HINT), classes="custom-hint")
            yield Input(self.values_text, id="custom-values", placeholder="x=-3, y=2")
            yield Label(id="custom-message")
            yield Static(Text("enter: open as the current graph   tab: next field   esc: cancel", style="dim"))

    def on_mount(self) -> None:
        for field in self.query(Input):
            field.cursor_blink = self.cursor_blink
        self.query_one("#custom-expr", Input).focus()
        self._show_names()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_one("#custom-message", Label).update("")
        self._show_names()

    def _show_names(self) -> None:
        from backprop_tui.engine import BackpropError
        from backprop_tui.engine.analysis.custom import free_names

        names_line = self.query_one("#custom-names", Static)
        try:
            names = free_names(self.query_one("#custom-expr", Input).value)
        except BackpropError as exc:
            names_line.update(Text(str(exc), style="red"))
            return
        try:
            given = parse_values(self.query_one("#custom-values", Input).value)
        except BackpropError:
            given = {}
        text = Text("needs a value for: ")
        if not names:
            text = Text("no names: the expression is a constant", style="dim")
        for k, name in enumerate(names):
            text.append(", " if k else "")
            text.append(name, style="bold green" if name in given else "bold red")
        names_line.update(text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        from backprop_tui.engine import BackpropError, Session
        from backprop_tui.engine.analysis.custom import custom_preset, free_names

        message = self.query_one("#custom-message", Label)
        expression = self.query_one("#custom-expr", Input).value
        try:
            values = parse_values(self.query_one("#custom-values", Input).value)
            names = free_names(expression)
            extra = [name for name in values if name not in names]
            if extra:
                raise BackpropError(
                    f"values: {', '.join(extra)} not in the expression (it reads {', '.join(names) or 'no names'})"
                )
            session = Session(custom_preset(expression, values))
        except BackpropError as exc:
            message.update(Text(str(exc), style="bold red"))
            return
        except Exception as exc:  # noqa: BLE001 - a parser bug must leave the explorer usable
            message.update(Text(f"{type(exc).__name__}: {exc}", style="bold red"))
            return
        self.dismiss(session)

    def action_cancel(self) -> None:
        self.dismiss(None)
