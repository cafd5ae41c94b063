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
        self.query_one("#header-title", Static).update(Text.assemble(("backprop-tui", "bold"), f"  loading {what}…"))

    def update_session(self, session: "Session") -> None:
        snapshot = session.snapshot
        self.query_one("#header-title", Static).update(Text(snapshot.title, style="bold"))
        output = Text.assemble((snapshot.output, "bold"), " = ", (fmt(snapshot.loss), "bold"))
        previous = session.previous
        if previous is not None and snapshot.output in previous:
            delta = scalar_delta(snapshot.node(snapshot.output).value, previous.node(previous.output).value)
            if delta is not None:
                output.append_text(delta_text(delta))
        self.query_one("#header-output", Static).update(output)
        history = session.loss_history
        stats = Text.assemble(
            ("steps ", "dim"), str(session.steps_taken),
            ("  lr ", "dim"), fmt(session.learning_rate),
            ("  loss ", "dim"), fmt(snapshot.loss), " ",
        )
        self.query_one("#header-stats", Static).update(stats)
        # one point draws as a full bar, which reads as "loss is high": wait for a second point
        # nan/inf (SGD diverged) would crash Sparkline's scaling: it draws the finite points
        finite = [x for x in history if math.isfinite(x)]
        spark = self.query_one("#header-spark", Sparkline)
        spark.data = finite
        spark.display = len(finite) > 1

    def show_status(self, message: str, error: bool = False) -> None:
        self.query_one("#header-status", Static).update(Text(message, style="bold red" if error else "italic"))
