"""The floor of any Textual app: one Static whose key changes a number.

bench_latency times its keys exactly as it times the explorer's edits, in the same run,
so an edit's latency can be read as a multiple of what Textual itself takes to handle a
key and draw a changed label.
"""

from __future__ import annotations

from textual.app import App
from textual.binding import Binding
from textual.widgets import Static


class FloorApp(App[None]):
    BINDINGS = [
        Binding("plus", "change(1)", "Up"),
        Binding("minus", "change(-1)", "Down"),
        Binding("ctrl+q", "quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.value = 0

    def compose(self):
        yield Static(self.label(), id="value")

    def label(self) -> str:
        return f"value {self.value}"

    def action_change(self, delta: int) -> None:
        self.value += delta
        self.query_one("#value", Static).update(self.label())


if __name__ == "__main__":
    FloorApp().run()
