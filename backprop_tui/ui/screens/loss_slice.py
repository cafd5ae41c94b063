"""The output along one leaf element, with its tangent: what a gradient *is*, as a picture.

Every number comes from engine.analysis.loss_slice, computed in a thread worker on a
FrozenState copy of the session (the real graph run forward at each x, and autograd for
the slope). The screen only plots them and prints them beside the plot.
"""

from __future__ import annotations

import math

from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Static
from textual_plotext import PlotextPlot

from backprop_tui.ui.format import fmt
from backprop_tui.ui.screens.dialog import Dialog

if TYPE_CHECKING:
    from backprop_tui.engine.analysis.loss_slice import LossSlice

POINTS = 61
ZOOM = 2.0  # + and - widen and narrow the range by this factor


class SliceReady(Message):
    def __init__(self, result: "LossSlice | None", error: str = "", generation: int = 0) -> None:
        super().__init__()
        self.result = result
        self.error = error
        self.generation = generation


class LossSliceScreen(Dialog[None]):
    """The output plotted along `name[index]`, with the tangent line whose slope is the grad."""

    DEFAULT_CSS = """
    LossSliceScreen .wide-dialog { border: thick $primary; background: $surface; padding: 0 1; }
    LossSliceScreen #slice-box { width: 96%; height: 92%; max-height: 92%; }
    LossSliceScreen #slice-body { height: 1fr; }
    LossSliceScreen #slice-plot { width: 1fr; height: 1fr; }
    LossSliceScreen #slice-numbers { width: 30; height: auto; padding-left: 1; }
    LossSliceScreen #slice-text { height: auto; margin-top: 1; }
    LossSliceScreen #slice-keys { height: 1; }
    """

    BINDINGS = [
        Binding("escape,x", "close", "Close", id="slice.close", tooltip="Back to the explorer."),
        Binding("plus,equals_sign", "zoom(2)", "Wider", id="slice.wider",
                tooltip="Plot over a range twice as wide around the current value."),
        Binding("minus", "zoom(0.5)", "Narrower", id="slice.narrower",
                tooltip="Plot over a range half as wide: the curve approaches its tangent."),
    ]

    def __init__(self, state, name: str, index: tuple[int, ...] | None, grad: float | None) -> None:
        """`state`: a FrozenState of the session; `grad`: the element's grad as the explorer shows it."""
        super().__init__()
        self.state = state
        self.leaf = name
        self.index = index
        self.grad = grad
        self.result: LossSlice | None = None
        self.span: float | None = None  # None: the engine's default, max(1, |x0|) / 2
        self._generation = 0

    def compose(self):
        with Vertical(id="slice-box", classes="wide-dialog"):
            yield Static(Text("Loss slice", style="bold"), id="slice-title")
            with Horizontal(id="slice-body"):
                yield PlotextPlot(id="slice-plot")
                yield Static(Text("computing…", style="dim"), id="slice-numbers")
            yield Static(id="slice-text")
            yield Static(Text("+ wider   - narrower   esc close", style="dim"), id="slice-keys")

    def on_mount(self) -> None:
        self._compute()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_zoom(self, factor: float) -> None:
        if self.result is None:
            return
        # the current half-width, read back from the engine's own range
        half = float(self.result.xs[-1] - self.result.xs[0]) / 2
        self.span = half * (ZOOM if factor > 1 else 1 / ZOOM)
        self._compute()

    def _compute(self) -> None:
        self._generation += 1
        self.query_one("#slice-numbers", Static).update(Text("computing…", style="dim"))
        self._run(self.span, self._generation)

    @work(thread=True, exclusive=True, group="slice", description="the loss along one element")
    def _run(self, span: float | None, generation: int) -> None:
        from backprop_tui.engine import BackpropError
        from backprop_tui.engine.analysis.loss_slice import loss_slice

        try:
            result = loss_slice(self.state, self.leaf, self.index, span=span, points=POINTS)
        except (BackpropError, ValueError) as exc:
            self.post_message(SliceReady(None, str(exc), generation))
            return
        except Exception as exc:  # noqa: BLE001 - an analysis bug must not take the explorer down
            self.post_message(SliceReady(None, f"{type(exc).__name__}: {exc}", generation))
            return
        self.post_message(SliceReady(result, "", generation))

    def on_slice_ready(self, message: SliceReady) -> None:
        if message.generation != self._generation:
            return
        numbers = self.query_one("#slice-numbers", Static)
        if message.result is None:
            numbers.update(Text(message.error, style="bold red"))
            self.query_one("#slice-text", Static).update("")
            return
        self.result = result = message.result
        self.query_one("#slice-title", Static).update(
            Text.assemble(("Loss slice: ", "bold"), (f"{result.output} along {result.label}", "bold cyan"))
        )
        self._plot(result)
        numbers.update(self._numbers(result))
        self.query_one("#slice-text", Static).update(Text(result.text + "."))

    def _plot(self, result: "LossSlice") -> None:
        widget = self.query_one(PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        xs = result.xs.tolist()
        # nan/inf (log of a negative, overflow) would crash plotext's axis labels: plot the finite points
        for ys, label, color in (
            (result.ys.tolist(), result.output, "cyan"),
            (result.tangent.tolist(), "tangent", "yellow"),
        ):
            points = [(x, y) for x, y in zip(xs, ys) if math.isfinite(x) and math.isfinite(y)]
            if points:
                plt.plot([x for x, _ in points], [y for _, y in points], label=label, marker="braille", color=color)
        if math.isfinite(result.x0) and math.isfinite(result.y0):
            plt.scatter([result.x0], [result.y0], marker="●", color="red")
        plt.xlabel(result.label)
        plt.title(f"{result.output} vs {result.label}")
        widget.refresh()

    def _numbers(self, result: "LossSlice") -> Text:
        out, label = result.output, result.label
        text = Text()
        text.append(f"{label} = ", style="bold")
        text.append(f"{fmt(result.x0)}\n")
        text.append(f"{out} = ", style="bold")
        text.append(f"{fmt(result.y0)}\n\n")
        text.append("slope of the tangent\n", style="bold yellow")
        text.append(f"  {fmt(result.slope)}\n\n")
        text.append(f"grad ∂{out}/∂{label}\n", style="bold")
        if self.grad is None:
            text.append("  no grad", style="dim italic")
            text.append(f"\n  ({self.leaf} does not require grad;\n   the slope is what it would be)", style="dim")
        else:
            text.append(f"  {fmt(self.grad)}")
        text.append(f"\n\nrange {fmt(result.xs[0], 4)} … {fmt(result.xs[-1], 4)}", style="dim")
        return text


def selected_element(app) -> tuple[str, tuple[int, ...] | None] | None:
    """The weight editor's selected leaf and its grid cursor element (None before a session)."""
    from backprop_tui.ui.widgets.weight_editor import WeightEditor

    weights = app.query_one(WeightEditor)
    if weights.leaf is None:
        return None
    cursor = getattr(weights, "_cursor_index", None)
    index = cursor() if callable(cursor) else None
    return weights.leaf, index


def open_loss_slice(app) -> None:
    """Push the slice of the selected leaf element of `app.session` (the `x` key)."""
    from backprop_tui.engine.analysis.live import FrozenState

    session = app.session
    selected = selected_element(app)
    if session is None or selected is None:
        return
    name, index = selected
    node = session.snapshot.node(name)
    if node.dtype == "int":  # class indices: no value between two of them, no slope
        from backprop_tui.ui.widgets.header import AppHeader

        app.query_one(AppHeader).show_status(
            f"{name} holds integers (indices): the output has no slice along it; pick a float leaf", error=True)
        app.bell()
        return
    grad = None
    if node.grad is not None and index is not None and node.grad.size:
        grad = float(node.grad[index]) if index else float(node.grad.reshape(-1)[0])
    app.push_screen(LossSliceScreen(FrozenState.of(session), name, index, grad))
