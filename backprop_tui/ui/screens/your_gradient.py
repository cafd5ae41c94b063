"""`y`: type a hand-derived gradient for the highlighted node element; autograd judges it.

The verdict (exact / close / wrong, with the difference) is the engine's
(analysis.gradcheck.check_your_gradient); the text is parsed by engine.numbers.parse_number,
so refused text gets the same message as in the weight editor. The dialog stays open for
another try; Escape closes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Label, Static

from backprop_tui.ui.screens.dialog import Dialog

if TYPE_CHECKING:
    from backprop_tui.engine.snapshot import Snapshot

VERDICT_STYLE = {"exact": "bold green", "close": "bold yellow", "wrong": "bold red"}
VERDICT_MARK = {"exact": "✓ exact", "close": "≈ close", "wrong": "✗ wrong"}


def element_of(snapshot: "Snapshot", name: str, index: tuple[int, ...] | None) -> tuple[int, ...] | None:
    """The element asked about: the grid's cursor element, else the first of a tensor."""
    shape = snapshot.node(name).shape
    if index and len(index) == len(shape):
        return tuple(index)
    return (0,) * len(shape) if shape else None


class YourGradientScreen(Dialog[None]):
    BINDINGS = [
        Binding("escape", "close", "Close", id="your_gradient.close", tooltip="Close; nothing changes."),
    ]

    DEFAULT_CSS = """
    #yg-result { height: auto; margin-top: 1; }
    #yg-details { height: auto; }
    """

    def __init__(
        self, snapshot: "Snapshot", name: str, index: tuple[int, ...] | None, cursor_blink: bool = True
    ) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.node_name = name
        self.index = element_of(snapshot, name, index)
        self.cursor_blink = cursor_blink

    @property
    def target(self) -> str:
        from backprop_tui.engine.session import format_index

        return f"∂{self.snapshot.output}/∂{format_index(self.node_name, self.index)}"

    def compose(self):
        with Vertical(classes="dialog", id="yg-box"):
            yield Static(Text.assemble(("Your gradient  ", "bold"), (self.target, "bold cyan")), id="yg-title")
            hint = "Work it out by hand (chain rule), type the number, enter: autograd checks it.  esc: close"
            node = self.snapshot.node(self.node_name)
            if node.shape and int(node.value.size) > 1:
                hint += "\nAnother element: pick it in the weights grid (leaves) before pressing y."
            yield Static(Text(hint, style="dim"), id="yg-hint")
            yield Input(placeholder="e.g. 39 or -1.5e-3", id="yg-input")
            yield Label(id="yg-result")
            yield Label(id="yg-details")

    def on_mount(self) -> None:
        field = self.query_one(Input)
        field.cursor_blink = self.cursor_blink
        field.focus()
        if self.snapshot.node(self.node_name).grad is None:
            self._say(Text(f"{self.node_name} has no gradient: it does not require grad "
                           "(or backward never reaches it)", style="bold red"))

    def _say(self, result: Text, details: Text | str = "") -> None:
        self.query_one("#yg-result", Label).update(result)
        self.query_one("#yg-details", Label).update(details)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        from backprop_tui.engine import BackpropError
        from backprop_tui.engine.analysis.gradcheck import check_your_gradient
        from backprop_tui.engine.numbers import parse_number
        from backprop_tui.ui.format import fmt

        try:
            typed = parse_number(event.value)
            verdict = check_your_gradient(self.snapshot, self.node_name, self.index, typed)
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

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()

    def action_close(self) -> None:
        self.dismiss(None)
