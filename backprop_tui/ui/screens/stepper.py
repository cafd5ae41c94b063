"""`b` / `B`: walk the backward pass (or the forward pass) one node at a time.

Backward: reverse topological order from the output; at each node its grad is complete
and it sends incoming grad × local derivative = contribution to each input
(engine.analysis.stepper.backward_steps). Forward: leaves, then steps in order
(forward_steps). The panel sits over the right-hand column, so the graph stays in
view with the current node under its cursor. Steps are computed in a thread worker on
a FrozenState taken when the panel opened.
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Static

from backprop_tui.ui.screens.dialog import Dialog

WINDOW = 7  # nodes of the order line shown around the current one


class StepThroughScreen(Dialog[None]):
    BINDINGS = [
        Binding(
            "escape",
            "close",
            "Close",
            id="steps.close",
            tooltip="Leave the step-through; the graph keeps the last node.",
        ),
        Binding("right,space,enter", "move(1)", "Next", id="steps.next", tooltip="The next node of this pass."),
        Binding(
            "left,backspace", "move(-1)", "Previous", id="steps.previous", tooltip="The previous node of this pass."
        ),
        Binding("home", "jump(0)", "First", id="steps.first", show=False, tooltip="The first node of this pass."),
        Binding("end", "jump(-1)", "Last", id="steps.last", show=False, tooltip="The last node of this pass."),
        Binding(
            "b",
            "switch('backward')",
            "Backward",
            id="steps.backward",
            tooltip="Walk the backward pass (from the output).",
        ),
        Binding(
            "B", "switch('forward')", "Forward", id="steps.forward", tooltip="Walk the forward pass (leaves first)."
        ),
    ]

    DEFAULT_CSS = """
    StepThroughScreen { align: right top; background: transparent; }
    StepThroughScreen #steps-box {
        width: 56%;
        height: 1fr;
        margin: 2 0 0 0;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    StepThroughScreen.-narrow #steps-box { width: 62%; }
    StepThroughScreen #steps-order { height: auto; }
    StepThroughScreen #steps-scroll { height: 1fr; }
    """

    class Ready(Message):
        def __init__(self, steps: dict | str) -> None:
            super().__init__()
            self.steps = steps

    def __init__(self, state, output: str, mode: str = "backward") -> None:
        super().__init__()
        self.state = state
        self.output = output
        self.mode = mode
        self.steps: dict[str, tuple] | None = None
        self.position = 0

    def compose(self):
        with Vertical(id="steps-box"):
            yield Static(id="steps-order")
            with VerticalScroll(id="steps-scroll"):
                yield Static(Text("computing the passes…", style="dim italic"), id="steps-detail")
        yield Footer()

    def on_mount(self) -> None:
        # inline: the app's stylesheet centres every ModalScreen; this one leaves the graph in view
        self.styles.align = ("right", "top")
        self.styles.background = "transparent"
        self.set_class(self.app.size.width < 90, "-narrow")
        self._title()
        self._compute()

    @work(thread=True, exclusive=True, group="steps", description="the backward pass, step by step")
    def _compute(self) -> None:
        from backprop_tui.engine import BackpropError
        from backprop_tui.engine.analysis.stepper import backward_steps, forward_steps

        try:
            steps: dict | str = {"backward": backward_steps(self.state), "forward": forward_steps(self.state)}
        except BackpropError as exc:
            steps = str(exc)
        except Exception as exc:  # noqa: BLE001
            steps = f"step-through unavailable ({type(exc).__name__}: {exc})"
        self.post_message(self.Ready(steps))

    def on_step_through_screen_ready(self, message: Ready) -> None:
        if isinstance(message.steps, str):
            self.query_one("#steps-detail", Static).update(Text(message.steps, style="bold red"))
            return
        self.steps = message.steps
        self.position = 0
        self._show()

    # ------------------------------------------------------------ navigation

    @property
    def current(self) -> tuple:
        return () if self.steps is None else self.steps[self.mode]

    def action_move(self, delta: int) -> None:
        if self.current:
            self.position = max(0, min(len(self.current) - 1, self.position + delta))
            self._show()

    def action_jump(self, where: int) -> None:
        if self.current:
            self.position = where % len(self.current)
            self._show()

    def action_switch(self, mode: str) -> None:
        if mode != self.mode:
            self.mode = mode
            self.position = 0
            self._show()

    def action_close(self) -> None:
        self.dismiss(None)

    # ------------------------------------------------------------ rendering

    def _title(self) -> None:
        box = self.query_one("#steps-box")
        if self.mode == "backward":
            box.border_title = "Backward pass: reverse topological order"
        else:
            box.border_title = "Forward pass: in order"
        steps = self.current
        box.border_subtitle = f"step {self.position + 1} of {len(steps)}" if steps else ""

    def _show(self) -> None:
        steps = self.current
        if not steps:
            return
        step = steps[self.position]
        self._title()
        self.query_one("#steps-order", Static).update(self._order_line(steps))
        detail = self._backward(step) if self.mode == "backward" else self._forward(step)
        self.query_one("#steps-detail", Static).update(detail)
        self.query_one("#steps-scroll", VerticalScroll).scroll_home(animate=False)
        self._highlight(step.node)

    def _order_line(self, steps: tuple) -> Text:
        arrow = " ← " if self.mode == "backward" else " → "
        start = max(0, min(self.position - WINDOW // 2, len(steps) - WINDOW))
        shown = steps[start:start + WINDOW]
        text = Text("… " if start > 0 else "", style="dim")
        for i, step in enumerate(shown, start):
            if i > start:
                text.append(arrow, style="dim")
            text.append(step.node, style="bold reverse" if i == self.position else "")
        if start + WINDOW < len(steps):
            text.append(" …", style="dim")
        return text

    def _backward(self, step) -> Text:
        from backprop_tui.engine.format import format_array

        out = self.output
        lines = Text()
        lines.append(f"{step.node}", style="bold")
        if not step.pushes and step.node != out:
            lines.append("  a leaf: AccumulateGrad stores its grad\n", style="dim")
        else:
            lines.append("  its grad is complete: every consumer has sent its part\n", style="dim")
        lines.append(f"∂{out}/∂{step.node} = ", style="dim")
        lines.append(format_array(step.grad), style="bold")
        lines.append("\n\n")
        lines.append(step.text + "\n")
        for push in step.pushes:
            lines.append("\n")
            lines.append(f"→ {push.input}\n", style="bold cyan")
            lines.append("  incoming  ", style="dim")
            lines.append(f"∂{out}/∂{step.node} = {format_array(push.incoming)}\n")
            lines.append("  × local   ", style="dim")
            lines.append(f"{push.local.text}\n")
            lines.append("  = sends   ", style="dim")
            lines.append(format_array(push.contribution), style="bold")
            lines.append("\n")
            lines.append(f"  {push.text}\n", style="green")
            if push.complete:
                lines.append(
                    f"  {push.input} has received every part: its grad is {format_array(push.accumulated)}\n",
                    style="dim",
                )
            else:
                lines.append(
                    f"  {push.input} has {format_array(push.accumulated)} so far; more parts to come\n", style="yellow"
                )
        return lines

    def _forward(self, step) -> Text:
        from backprop_tui.engine.format import format_array

        lines = Text()
        lines.append(step.node, style="bold")
        lines.append(f"  {step.kind}\n", style="cyan")
        if step.inputs:
            lines.append("computed from ", style="dim")
            lines.append(", ".join(step.inputs) + "\n")
        lines.append("\n")
        lines.append(step.text + "\n", style="bold")
        if step.value.size > 1:
            lines.append("\nvalue  ", style="dim")
            lines.append(format_array(step.value, max_items=8))
        return lines

    def _highlight(self, name: str) -> None:
        """Put the graph tree's cursor on the current node (the graph stays visible)."""
        from backprop_tui.ui.widgets.graph_view import GraphView

        for screen in reversed(self.app.screen_stack):
            if screen is not self:
                trees = screen.query(GraphView)
                if trees:
                    trees.first().show_node(name)
                    return
