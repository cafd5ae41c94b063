"""`v`: the highlighted node's value or grad, whole: every element, leaves and intermediates.

The panels show a tensor's first elements; this screen shows all of them as an aligned
matrix that scrolls both ways (ui/widgets/tensor_view.py). `t` switches between the value
and the grad. A modal screen: the explorer's edit keys wait until it is closed, so what it
shows is always the session's current state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static

from backprop_tui.ui.format import shape_text
from backprop_tui.ui.screens.dialog import Dialog
from backprop_tui.ui.widgets.tensor_view import TensorView

if TYPE_CHECKING:
    from backprop_tui.engine.snapshot import Snapshot


class WholeTensorScreen(Dialog[None]):
    BINDINGS = [
        Binding("escape,v", "close", "Close", id="whole.close", tooltip="Back to the explorer."),
        Binding("t", "toggle", "Value/grad", id="whole.toggle", tooltip="Show the grad instead of the value, or back."),
    ]

    DEFAULT_CSS = """
    WholeTensorScreen #whole-box { width: 100%; height: 1fr; background: $surface; }
    WholeTensorScreen #whole-title { height: auto; padding: 0 1; background: $boost; }
    """

    def __init__(self, snapshot: "Snapshot", name: str, grad: bool = False) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.node_name = name
        node = snapshot.node(name)
        self.showing_grad = grad and node.grad is not None

    def compose(self):
        with Vertical(id="whole-box"):
            yield Static(id="whole-title")
            yield TensorView(*self.shown(), id="whole-view")

    def shown(self):
        node = self.snapshot.node(self.node_name)
        return (node.grad if self.showing_grad else node.value), self.showing_grad

    def on_mount(self) -> None:
        self.title_line()
        self.query_one(TensorView).focus()

    def title_line(self, note: str = "") -> None:
        node = self.snapshot.node(self.node_name)
        what = f"∂{self.snapshot.output}/∂{self.node_name}" if self.showing_grad else f"{self.node_name}  value"
        count = f"{node.value.size:,} element{'s' * (node.value.size != 1)}"
        text = Text.assemble((what, "bold cyan"), f"  [{shape_text(node.shape)}], {count}",
                             ("  (arrows, page keys: scroll)", "dim"))
        if note:
            text.append(f"\n{note}", style="bold red")
        self.query_one("#whole-title", Static).update(text)

    def action_toggle(self) -> None:
        if self.snapshot.node(self.node_name).grad is None:
            self.title_line(f"{self.node_name} has no grad: it does not require grad (or backward never reaches it)")
            return
        self.showing_grad = not self.showing_grad
        self.query_one(TensorView).show(*self.shown())
        self.title_line()

    def action_close(self) -> None:
        self.dismiss(None)
