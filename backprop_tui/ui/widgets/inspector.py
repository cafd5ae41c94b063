"""`#inspector`: everything about the highlighted node, and the chain rule with numbers."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from rich.console import Group
from rich.text import Text
from textual import work
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from backprop_tui.ui.teaching.messages import FlagsReady, TeachingReady
from backprop_tui.ui.format import (
    CHANGED,
    NO_GRAD,
    changed,
    grad_of,
    matrix,
    matrix_width,
    shape_text,
    value_of,
)

if TYPE_CHECKING:
    from backprop_tui.engine.snapshot import Node


SLOW_ANALYSIS = 0.25  # seconds: after this, the inspector says "computing…"


@dataclass(frozen=True)
class Explanation:
    """What the engine's analyses say about a node (engine.analysis.local)."""

    chain_rule: str  # e.g. ∂f/∂h = ∂f/∂g · ∂g/∂h = 18 · 12 = 216, or why there is no grad
    local: tuple[str, ...] = ()  # one line per input of a step: d/dh (h³ + 1) = 3h² = 12


class ExplanationReady(Message):
    """The chain rule of one request (`generation`), from the inspector's worker."""

    def __init__(self, generation: int, explanation: Explanation, values: list[Text]) -> None:
        super().__init__()
        self.generation = generation
        self.explanation = explanation
        self.values = values  # the value and grad lines


class Inspector(VerticalScroll):
    """Renders one node with the chain rule the engine computed through torch.

    The chain rule and, below it, the teaching sections (contributions per consumer, paths
    to the output, per-sample shares, flags) from `ui.teaching.sections` are computed in a
    thread worker on every edit and every move (`request`); "computing…" if they are slow.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        from backprop_tui.ui.teaching.sections import SnapshotCache

        self._cache = SnapshotCache()
        self._generation = 0  # one per request: older results are dropped
        self._awaiting: tuple | None = None  # (generation, node, before, output, index) awaiting its chain rule
        self._requests_lock = threading.Lock()
        self._latest_request: tuple | None = None  # the newest request not yet taken by the worker
        self._analysing = False  # a worker is taking requests

    def compose(self):
        yield Static(id="inspector-body")
        yield Static(id="inspector-teaching")
        yield Static(id="inspector-details")

    def on_mount(self) -> None:
        self.border_title = "Inspector"

    def show(
        self,
        node: "Node",
        previous: "Node | None",
        explanation: Explanation,
        output: str,
        cursor: tuple[int, ...] | None = None,
        values: "list[Text] | None" = None,
    ) -> None:
        """`values`: the value and grad lines, when a worker made them (else made here)."""
        # What a learner looks for first (value, grad, chain rule) comes first: the
        # details below may scroll out of a small terminal.
        title = Text(node.name, style="bold")
        title.append(f"  {node.kind}", style="cyan")
        if node.module:
            title.append(f"  of {node.module} (nn.Linear)", style="dim")
        lines: list[Text] = [title]
        if node.expr:
            lines.append(Text.assemble(("expr  ", "dim"), node.expr))
        if values is None:
            values = self._values(node, previous, output, cursor, self._room())
        lines.extend(values)
        lines.append(Text.assemble(("chain rule  ", "bold"), explanation.chain_rule))
        if explanation.local:
            lines.append(Text("local derivatives (other inputs held fixed)", style="dim"))
            lines.extend(Text(f"  {line}") for line in explanation.local)
        self.query_one("#inspector-body", Static).update(Group(*lines))
        lines = [Text("")]
        grad_fn = node.grad_fn or ("AccumulateGrad (a leaf)" if node.requires_grad else "none: not tracked")
        lines.append(Text.assemble(("shape ", "dim"), f"{shape_text(node.shape)} {node.dtype}",
                                   ("  grad_fn ", "dim"), grad_fn))
        lines.append(Text.assemble(("requires_grad ", "dim"), str(node.requires_grad)))
        lines.append(Text.assemble(("inputs ", "dim"), ", ".join(node.inputs) or "none (a leaf)"))
        lines.append(Text.assemble(("consumers ", "dim"), ", ".join(node.consumers) or "none"))
        if node.note:
            lines.append(Text(node.note, style="italic"))
        self.query_one("#inspector-details", Static).update(Group(*lines))

    def clear(self) -> None:
        for static in self.query(Static):
            static.update("")

    # ------------------------------------------------------------ analyses, in a worker

    def request(self, state, snapshot, name: str, before: "Node | None", index: tuple[int, ...] | None,
                explain: Callable[[object, str], Explanation]) -> None:
        """Show `name` of `snapshot` once its analyses (from a FrozenState) arrive from a worker.

        The chain rule, the teaching sections and the flags all run forward and backward
        passes on private graphs: never on the UI thread. Until the chain rule arrives the
        panel keeps what it showed; if that takes long, it says "computing…".
        """
        self._generation += 1
        generation = self._generation
        self._awaiting = (generation, snapshot.node(name), before, snapshot.output, index)
        request = (state, snapshot, name, before, index, generation, explain, self._room())
        with self._requests_lock:
            self._latest_request = request
            start = not self._analysing
            self._analysing = True
        if start:
            self._analyse()
        self.set_timer(SLOW_ANALYSIS, lambda: self._show_computing(generation))

    def _show_computing(self, generation: int) -> None:
        pending = self._awaiting
        if pending is None or pending[0] != generation:
            return  # arrived (or superseded) in time: nothing to say
        # cheap: the body keeps what it showed (rebuilding its matrices here would slow
        # the very edit that is late); the result replaces both
        self._show_teaching([Text("computing…", style="dim italic")])

    # One worker at a time, taking the latest request when it is free: requests made
    # meanwhile replace each other (no cancelled workers, no pile of threads on key repeat).
    @work(thread=True, group="inspector", description="the inspector's analyses")
    def _analyse(self) -> None:
        worker = get_current_worker()
        try:
            while not worker.is_cancelled:
                with self._requests_lock:
                    request, self._latest_request = self._latest_request, None
                    if request is None:
                        self._analysing = False
                        return
                self._analyse_one(worker, *request)
        finally:
            with self._requests_lock:
                self._analysing = False

    def _analyse_one(self, worker, state, snapshot, name: str, before, index, generation: int, explain,
                     room: int) -> None:
        from backprop_tui.ui.teaching.sections import compute_flags, inspector_sections

        def cancelled() -> bool:
            return worker.is_cancelled or generation != self._generation

        if cancelled():
            return

        # the matrices too: formatting every element of a big tensor takes a while
        values = self._values(snapshot.node(name), before, snapshot.output, index, room)
        explanation = explain(state, name)
        if cancelled():
            return
        self.post_message(ExplanationReady(generation, explanation, values))
        self.post_message(FlagsReady(snapshot, compute_flags(state, snapshot, self._cache)))
        if cancelled():
            return
        lines = inspector_sections(state, snapshot, name, index, self._cache, cancelled)
        if not cancelled():
            self.post_message(TeachingReady(generation, lines))

    def on_explanation_ready(self, message: "ExplanationReady") -> None:
        message.stop()
        pending = self._awaiting
        if pending is None or pending[0] != message.generation:
            return  # a newer edit or node superseded it
        self._awaiting = None
        _, node, before, output, index = pending
        self.show(node, before, message.explanation, output, index, message.values)

    def on_teaching_ready(self, message: TeachingReady) -> None:
        message.stop()
        if message.generation == self._generation:
            self._show_teaching(message.lines)

    def _show_teaching(self, lines: list[Text]) -> None:
        self.query_one("#inspector-teaching", Static).update(Group(Text(""), *lines) if lines else "")

    def _room(self) -> int:
        """The width the matrices may take."""
        return max(20, self.scrollable_content_region.width)

    def _values(
        self, node: "Node", previous: "Node | None", output: str, cursor: tuple[int, ...] | None, room: int
    ) -> list[Text]:
        """The value and grad lines; reads no widget state (a worker calls it)."""
        if not node.shape:
            return [
                Text.assemble(("value  ", "dim"), value_of(node, previous)),
                Text.assemble((f"grad   ∂{output}/∂{node.name} = ", "dim"), grad_of(node, previous)),
            ]
        width = matrix_width([node.value, node.grad], [False, True])
        # as many columns as fit: "[", " x" per column, " … +N", " ]"
        max_cols = max(1, (room - 10) // (width + 1))
        old = None if previous is None else previous.value
        lines = [Text(f"value  [{shape_text(node.shape)}]", style="dim")]
        lines.extend(matrix(node.value, width, mask=changed(node.value, old), max_cols=max_cols, cursor=cursor))
        if node.grad is None:
            lines.append(Text.assemble(("grad   ", "dim"), ("no grad", NO_GRAD)))
        else:
            old_grad = None if previous is None else previous.grad
            lines.append(Text(f"grad   ∂{output}/∂{node.name}", style="dim"))
            lines.extend(
                matrix(node.grad, width, grad=True, mask=changed(node.grad, old_grad), max_cols=max_cols, cursor=cursor)
            )
        mask = changed(node.value, old)
        if mask is not None and mask.any():
            lines.append(Text(f"{int(mask.sum())} element(s) changed with the last edit (shown reversed)", style=CHANGED))
        return lines

