"""The header: preset title, the output's name and value, SGD steps, loss and its sparkline."""

from __future__ import annotations

import math

from typing import TYPE_CHECKING

from rich.text import Text
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from backprop_tui.ui.format import delta_text, fmt, scalar_delta

if TYPE_CHECKING:
    from backprop_tui.engine import Session


class AppHeader(Vertical):
    """One-line statics: the title and status take the room left (1fr) and never change
    size; the output and stats are as wide as their text. A layout pass of the whole
    screen is asked for only when that width changes (it costs more than the repaint)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._widths: dict[str, int] = {}  # the width of each auto-width static
        self._title: str | None = None
        self._texts: dict[str, Text] = {}  # what each static was last given

    def compose(self):
        with Horizontal(id="header-top"):
            yield Static("backprop-tui", id="header-title")
            yield Static(id="header-output")
        with Horizontal(id="header-bottom"):
            yield Static(id="header-stats")
            spark = Sparkline([], id="header-spark")
            spark.display = False  # shown from the second point of loss history on
            yield spark
            yield Static(id="header-status")

    def show_loading(self, what: str) -> None:
        self._texts.pop("#header-title", None)
        self.query_one("#header-title", Static).update(Text.assemble(("backprop-tui", "bold"), f"  loading {what}…"))

    def update_session(self, session: "Session") -> None:
        snapshot = session.snapshot
        if snapshot.title != self._title:  # another preset: fit the widths to it again
            self._title = snapshot.title
            self._widths.clear()
        self._set("#header-title", Text(snapshot.title, style="bold"))
        output = Text.assemble((snapshot.output, "bold"), " = ", (fmt(snapshot.loss), "bold"))
        previous = session.previous
        if previous is not None and snapshot.output in previous:
            delta = scalar_delta(snapshot.node(snapshot.output).value, previous.node(previous.output).value)
            if delta is not None:
                output.append_text(delta_text(delta))
        self._set("#header-output", output, pad_left=True)
        history = session.loss_history
        stats = Text.assemble(
            ("steps ", "dim"), str(session.steps_taken),
            ("  lr ", "dim"), fmt(session.learning_rate),
            ("  loss ", "dim"), fmt(snapshot.loss), " ",
        )
        self._set("#header-stats", stats)
        # one point draws as a full bar, which reads as "loss is high": wait for a second point
        # nan/inf (SGD diverged) would crash Sparkline's scaling: it draws the finite points
        finite = [x for x in history if math.isfinite(x)]
        spark = self.query_one("#header-spark", Sparkline)
        if spark.data != finite:
            spark.data = finite
        spark.display = len(finite) > 1

    def show_status(self, message: str, error: bool = False) -> None:
        self._set("#header-status", Text(message, style="bold red" if error else "italic"))

    def _set(self, selector: str, text: Text, pad_left: bool = False) -> None:
        if self._texts.get(selector) == text:
            return  # unchanged (the title, mostly): no repaint
        self._texts[selector] = text
        static = self.query_one(selector, Static)
        width = static.styles.width
        if width is not None and width.is_fraction:
            static.update(text, layout=False)
            return
        # as wide as its text, but never narrower while one preset is open: a shorter
        # number is padded, so that an edit repaints the header without a layout pass
        shown = self._widths.get(selector, 0)
        if text.cell_len <= shown:
            padding = Text(" " * (shown - text.cell_len))
            static.update(padding + text if pad_left else text + padding, layout=False)
            return
        self._widths[selector] = text.cell_len
        static.update(text, layout=True)
