"""Training: N SGD steps in a thread worker, the loss curve drawn as it runs, cancellable.

engine.analysis.training.train does the work on a FrozenState copy of the session; its
on_step callback posts progress (at most every PROGRESS_INTERVAL seconds) and returns
False once the worker is cancelled. When the run ends, however it ends, the values it
reached are applied to the session as ONE undoable edit and the loss history extended.

The UI thread stays responsive during a run (benchmarks/bench_training.py: no event-loop
stall over 50 ms on a 1,000-step run of mlp_784): the worker builds each progress plot
itself (plotext is tens of milliseconds of Python), at most two points per column, and
waits without the GIL while the screen draws it; the UI thread gets the GIL back within
the switch interval the explorer runs with (backprop_tui.process).

The toggle "skip zero_grad" runs the same loop without zeroing .grad between steps:
each backward adds into the .grad left by the previous one, as PyTorch's
AccumulateGrad does; `accumulate_grads` shows it on the current values.
"""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING, Callable

from rich.cells import cell_len
from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Checkbox, Input, Label, Static
from textual.worker import get_current_worker
from textual_plotext import PlotextPlot

from backprop_tui.ui.format import fmt
from backprop_tui.ui.widgets.toggles import MarkedCheckbox
from backprop_tui.ui.screens.dialog import Dialog

if TYPE_CHECKING:
    from backprop_tui.engine import Session
    from backprop_tui.engine.analysis.training import TrainingResult

DEFAULT_STEPS = 100
PROGRESS_INTERVAL = 0.1  # seconds between progress messages from the worker
DRAW_WAIT = 0.25  # at most this long the worker waits for a progress message to be drawn
MAX_PLOTTED = 1000  # the curve shows at most this many points (every k-th loss)

ZEROING = ("Each step: zero .grad, forward, backward, then θ ← θ − lr·θ.grad for every leaf "
           "that requires grad (what `s` does, N times).")
ACCUMULATING = ("Without zero_grad(), each backward ADDS its gradient into the .grad left by the "
                "step before (PyTorch's AccumulateGrad), so the update uses the running sum of all "
                "gradients so far: steps keep growing, and training overshoots or diverges.")


class TrainingProgress(Message):
    def __init__(self, losses: list[float], step: int, grad_norm: float,
                 shown: threading.Event | None = None, curve: "tuple | None" = None) -> None:
        super().__init__()
        self.losses = losses  # the loss at the start of each step so far
        self.step = step
        self.grad_norm = grad_norm
        self.shown = shown  # set once the screen has drawn this progress (the worker waits for it)
        self.curve = curve  # the plot built by the worker (LossCurve.show), or None


class TrainingFinished(Message):
    def __init__(self, result: "TrainingResult | None", error: str = "", curve: "tuple | None" = None) -> None:
        super().__init__()
        self.result = result
        self.error = error
        self.curve = curve  # the final curve built by the worker, or None


class AccumulationReady(Message):
    def __init__(self, lines: tuple[str, ...]) -> None:
        super().__init__()
        self.lines = lines


class TrainingScreen(Dialog[None]):
    DEFAULT_CSS = """
    /* opaque: a focus or layout change does not re-render the dimmed explorer beneath (20-60 ms) */
    TrainingScreen { background: $background; }
    TrainingScreen .wide-dialog { border: thick $primary; background: $surface; padding: 0 1; }
    TrainingScreen #train-box { width: 96%; height: 94%; max-height: 94%; }
    TrainingScreen #train-row { height: 3; }
    TrainingScreen #train-steps-label { width: auto; padding: 1 1 0 0; }
    TrainingScreen #train-steps { width: 14; }
    TrainingScreen #train-accumulate { width: auto; margin-left: 2; }
    TrainingScreen #train-message { height: auto; width: 100%; }
    /* the plot, status and keys stay in view */
    TrainingScreen #train-explain-scroll { height: auto; max-height: 45%; }
    TrainingScreen #train-explain { height: auto; color: $text-muted; }
    TrainingScreen #train-plot { height: 1fr; min-height: 6; }
    /* the final report has two lines: the plot keeps its size */
    TrainingScreen #train-status { height: auto; min-height: 2; }
    TrainingScreen #train-keys { height: 1; }
    """

    BINDINGS = [
        Binding("escape", "cancel_or_close", "Cancel / close", id="train.cancel",
                tooltip="Stop a running training (its steps so far are kept as one undoable edit); else close."),
        Binding("c", "cancel", "Cancel run", id="train.cancel_run", show=False,
                tooltip="Stop the running training; the steps done so far are applied."),
        Binding("ctrl+t", "toggle_accumulate", "Skip zero_grad", id="train.accumulate",
                tooltip="Toggle: do not zero .grad between steps, so gradients accumulate."),
    ]

    def __init__(self, session: "Session", cursor_blink: bool = True,
                 on_applied: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self.session = session
        self.cursor_blink = cursor_blink
        self.on_applied = on_applied
        self.running = False
        self.result: TrainingResult | None = None
        self._requested = 0
        self._stop = False  # cancel asked (the worker may not have started when it was)

    def compose(self):
        session = self.session
        with Vertical(id="train-box", classes="wide-dialog"):
            yield Static(
                Text.assemble(
                    ("Training: ", "bold"),
                    (f"SGD on {session.preset.name} ", "bold cyan"),
                    (f" · learning rate {fmt(session.learning_rate)} (l in the explorer)", "dim"),
                ),
                id="train-title",
            )
            with Horizontal(id="train-row"):
                yield Label("Steps", id="train-steps-label")
                yield Input(str(DEFAULT_STEPS), id="train-steps", type="integer")
                yield MarkedCheckbox("skip zero_grad (accumulate .grad)", False, id="train-accumulate")
            yield Label(id="train-message")
            with VerticalScroll(id="train-explain-scroll"):  # tab, then arrows, reach all of it
                yield Static(Text(ZEROING), id="train-explain")
            yield LossCurve(id="train-plot")
            yield Static(id="train-status")
            yield Static(Text("enter run   ctrl+t skip zero_grad   esc/c cancel a run   esc close", style="dim"),
                         id="train-keys")

    def on_mount(self) -> None:
        field = self.query_one("#train-steps", Input)
        field.cursor_blink = self.cursor_blink
        field.focus()
        self._plot(self.session.loss_history, "loss so far")
        self._status(Text(f"{self.session.snapshot.output} = {fmt(self.session.snapshot.loss)}; "
                          "type a number of steps and press enter"))

    # ------------------------------------------------------------ keys

    def action_cancel(self) -> None:
        if self.running:
            self._stop = True  # also stops a worker that had not started yet
            self.workers.cancel_group(self, "training")
            self._status(Text("cancelling…", style="yellow"))

    def action_cancel_or_close(self) -> None:
        if self.running:
            self.action_cancel()
        else:
            self.dismiss(None)

    def action_toggle_accumulate(self) -> None:
        box = self.query_one(Checkbox)
        box.value = not box.value

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel" and not self.running:
            return False  # `c` types into the steps input when nothing runs
        return True

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        explain = self.query_one("#train-explain", Static)
        if not event.value:
            explain.update(Text(ZEROING))
            return
        explain.update(Text(ACCUMULATING))
        self._accumulation()

    @work(thread=True, exclusive=True, group="accumulation", description="training: .grad over 3 backward calls")
    def _accumulation(self) -> None:
        from backprop_tui.engine import BackpropError
        from backprop_tui.engine.analysis.live import FrozenState
        from backprop_tui.engine.analysis.training import accumulate_grads

        try:
            lines = accumulate_grads(FrozenState.of(self.session), 3).lines
        except BackpropError as exc:
            lines = (str(exc),)
        self.post_message(AccumulationReady(lines))

    def on_accumulation_ready(self, message: AccumulationReady) -> None:
        if self.query_one(Checkbox).value:
            text = Text(ACCUMULATING + "\nOne forward, backward three times, nothing zeroed; each .grad by its"
                        " first element, and the multiple of the first call's it is:\n")
            text.append("\n".join(message.lines), style="bold")
            self.query_one("#train-explain", Static).update(text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        from backprop_tui.engine.analysis.training import MAX_STEPS

        message = self.query_one("#train-message", Label)
        if self.running:
            return
        text = event.value.strip()
        # ASCII digits only, and few: int() of 5,000 digits raises, and int("²") too
        if not (text.isascii() and text.isdigit() and len(text) <= 9) or not 1 <= int(text) <= MAX_STEPS:
            message.update(Text(f"steps: a whole number from 1 to {MAX_STEPS}", style="bold red"))
            return
        message.update("")
        self.start(int(text))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_one("#train-message", Label).update("")

    # ------------------------------------------------------------ the run

    def start(self, steps: int) -> None:
        from backprop_tui.engine.analysis.live import FrozenState

        self.running = True
        self._requested = steps
        zero_grad = not self.query_one(Checkbox).value
        self.query_one(Checkbox).disabled = True
        self.query_one("#train-steps", Input).disabled = True  # so `c` cancels instead of typing
        self.set_focus(None)
        self._status(Text(f"training {steps} steps…", style="yellow"))
        self._stop = False
        plot = self.query_one(LossCurve)
        where = (self.session.snapshot.output, plot.theme_name())
        state = FrozenState.of(self.session)
        # the worker starts once the screen shows the run started (fields disabled), so that
        # this repaint does not share the GIL with the worker building its graph
        self.call_after_refresh(self._train, state, steps, self.session.learning_rate, zero_grad, plot, where)

    # a description, or Textual builds one from repr() of the arguments (a FrozenState's tensors)
    @work(thread=True, exclusive=True, group="training", description="training: SGD steps")
    def _train(self, state, steps: int, lr: float, zero_grad: bool, plot: "LossCurve", where: tuple[str, str]) -> None:
        from textual_plotext.plot import Plot

        from backprop_tui.engine import BackpropError
        from backprop_tui.engine.analysis.training import train

        worker = get_current_worker()
        losses: list[float] = []
        last = [0.0]
        shown = threading.Event()
        canvas = Plot()  # the worker's own: the widget's is the UI thread's
        out, theme = where

        def curve(values: list[float]):
            try:
                return build_elsewhere(canvas, (plot.size.width, plot.size.height), theme, values, "loss", out)
            except Exception:  # noqa: BLE001 - the widget then builds it itself
                return None

        def on_step(info) -> bool:
            losses.append(info.loss)
            if time.monotonic() - last[0] >= PROGRESS_INTERVAL:
                so_far = list(losses)
                shown.clear()
                self.post_message(TrainingProgress(so_far, info.step, info.grad_norm, shown, curve(so_far)))
                # Wait, without the GIL, while the UI thread draws it: the steps' Python would
                # otherwise take the GIL from the redraw at every switch interval and stretch
                # it into a visible stall. The run pauses for the redraw (bounded by DRAW_WAIT).
                shown.wait(DRAW_WAIT)
                last[0] = time.monotonic()
            return not (worker.is_cancelled or self._stop)

        try:
            result = train(state, steps, lr=lr, zero_grad=zero_grad, on_step=on_step)
        except BackpropError as exc:
            self.post_message(TrainingFinished(None, str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - a failure must leave the explorer usable
            self.post_message(TrainingFinished(None, f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(TrainingFinished(result, curve=curve(list(result.losses))))

    def on_training_progress(self, message: TrainingProgress) -> None:
        if not self.running:
            if message.shown is not None:
                message.shown.set()
            return
        self._plot(message.losses, "loss", message.curve)
        out = self.session.snapshot.output
        self._status(Text(f"step {message.step} / {self._requested}   {out} = {fmt(message.losses[-1])}   "
                          f"‖grad‖ = {fmt(message.grad_norm, 4)}   (esc or c cancels)", style="yellow"))
        if message.shown is not None:
            self.call_after_refresh(message.shown.set)  # once the screen is repainted

    def on_training_finished(self, message: TrainingFinished) -> None:
        from backprop_tui.engine import EditError

        self.running = False
        self.query_one(Checkbox).disabled = False
        self.query_one("#train-steps", Input).disabled = False
        if message.result is None:
            self._status(Text(f"training failed: {message.error}; nothing changed", style="bold red"))
            return
        result = self.result = message.result
        try:
            label = apply_training(self.session, result)
        except EditError as exc:
            self._status(Text(f"the result cannot be applied: {exc}", style="bold red"))
            return
        self._plot(list(result.losses), "loss", message.curve)
        out = self.session.snapshot.output
        how = {"": "done", "cancelled": "cancelled"}.get(result.stopped, result.stopped)
        text = Text(f"{how}: {result.completed} steps, {out} {fmt(result.losses[0])} → {fmt(result.losses[-1])}. ",
                    style="bold")
        if label:
            text.append(f"Applied as one edit ({label}); ctrl+z in the explorer undoes it.", style="")
        self._status(text)
        self.query_one("#train-steps", Input).focus()
        if self.on_applied is not None and label:
            # the explorer's panels (under this screen) after the result is drawn: two short
            # pauses of the event loop rather than one long one
            self.app.call_after_refresh(self.on_applied, label)  # the app's: it outlives this screen

    # ------------------------------------------------------------ drawing

    def _status(self, text: Text) -> None:
        self.query_one("#train-status", Static).update(text)

    def _plot(self, losses: list[float], label: str, curve: "tuple | None" = None) -> None:
        """Put the curve on the plot; `curve`, built by the worker, saves building it here."""
        widget = self.query_one(LossCurve)
        draw_curve(widget.plt, losses, label, self.session.snapshot.output, widget.size.width)
        widget.show(curve)


def draw_curve(plt, losses: list[float], label: str, out: str, width: int) -> None:
    """The loss curve on a plotext Plot (the widget's, or a worker's own): data and labels."""
    plt.clear_data()
    plt.clear_figure()
    if len(losses) < 2:  # one point draws no curve: say what will appear
        plt.title(f"{out} per step: the curve appears when training runs")
        return
    # no more points than the plot can show: two per column (the "hd" marker's resolution),
    # which also keeps each redraw cheap
    most = min(MAX_PLOTTED, 2 * width) if width else MAX_PLOTTED
    stride = max(1, -(-len(losses) // most))
    picked = list(range(0, len(losses), stride))
    if picked[-1] != len(losses) - 1:
        picked.append(len(losses) - 1)  # the latest loss is always drawn
    # nan/inf (training diverged) would crash plotext's axis labels: plot the finite points
    steps = [k for k in picked if math.isfinite(losses[k])]
    if steps:
        # one curve: no legend, which plotext draws over the curve's start
        plt.plot(steps, [losses[k] for k in steps], marker="hd", color="cyan")
    plt.xticks(whole_step_ticks(len(losses) - 1))  # a step count is a whole number
    plt.xlabel("step")
    plt.title(f"{out} per step ({label})")


def whole_step_ticks(last: int, most: int = 6) -> list[int]:
    """At most `most` ticks on whole steps from 0 to `last`, at a round spacing (1, 2, 5 × 10^k)."""
    spacing = 1
    while last // spacing >= most:
        spacing = _next_round(spacing)
    return list(range(0, last + 1, spacing))


def _next_round(spacing: int) -> int:
    """1, 2, 5, 10, 20, 50, ..."""
    leading = int(str(spacing)[0])
    return spacing * 5 // 2 if leading == 2 else spacing * 2


class LossCurve(PlotextPlot):
    """The loss curve. Building a plotext plot takes tens of milliseconds of Python: during a
    run the worker builds it (`build_elsewhere`) and the widget shows that text as long as
    its size and theme are those it was built for; otherwise it builds its own."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self._drawn: tuple | None = None

    def show(self, drawn: "tuple | None") -> None:
        self._drawn = drawn
        self.refresh()  # cheap when `drawn` matches: render returns it

    def theme_name(self) -> str:
        """The plotext theme render() draws with: with `theme` "auto", the one PlotextPlot
        registers for the app's theme under this name."""
        return f"textual-auto-{self.app.theme}" if self.theme == "auto" else self.theme

    def render(self):
        drawn = self._drawn
        if drawn is not None and drawn[0] == (self.size.width, self.size.height) and drawn[1] == self.theme_name():
            return drawn[2]
        return super().render()


def build_elsewhere(
    plt, size: tuple[int, int], theme: str, losses: list[float], label: str, out: str
) -> "tuple | None":
    """In a worker thread, on a Plot of its own: the curve as LossCurve.render would build it."""
    width, height = size
    if not width or not height:
        return None
    draw_curve(plt, losses, label, out, width)
    plt.plotsize(width, height)
    plt.theme(theme)
    text = Text.from_ansi(plt.build())
    # plotext keeps a plot within the terminal it sees; one cut to fit is not the widget's
    # picture, which the widget then builds itself
    rows = text.plain.splitlines()
    if len(rows) != height or any(cell_len(row) != width for row in rows):
        return None
    return (size, theme, text)


def apply_training(session: "Session", result: "TrainingResult") -> str:
    """Apply the values training reached as one undoable edit; extend the loss history.

    Returns the edit's label ("" when no step completed: nothing is applied).
    """
    import torch

    if result.completed == 0:
        return ""
    trainable = [name for name, rg in session.requires_grad.items() if rg and name in result.values]
    values = {name: torch.from_numpy(result.values[name].copy()) for name in trainable}
    label = f"train {result.completed} steps" + ("" if result.zero_grad else " (no zero_grad)")
    # one undoable edit that also carries the run's losses: undo takes them back too
    session.apply_training(values, list(result.losses[: result.completed + 1]), result.completed, label)
    return label
