"""`#inspector`: everything about the highlighted node, and the chain rule with numbers."""

from __future__ import annotations

import threading
import time
from itertools import zip_longest
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from rich.text import Text
from textual import work
from textual.containers import VerticalScroll
from textual.message import Message
from textual.worker import get_current_worker

from backprop_tui.ui.messages import InspectAgain
from backprop_tui.ui.teaching.explain import Explanation
from backprop_tui.ui.teaching.sections import is_light
from backprop_tui.ui.widgets.text_block import TextBlock
from backprop_tui.ui.format import (
    CHANGED,
    NO_GRAD,
    changed,
    fmt,
    grad_of,
    index_text,
    matrix,
    matrix_width,
    shape_text,
    value_of,
)

if TYPE_CHECKING:
    from backprop_tui.engine.snapshot import Node, Snapshot


SLOW_ANALYSIS = 0.25  # seconds: after this, the inspector says "computing…"
LOCAL_ROWS = 6  # rows of a local derivative's values shown (a bigger tensor is cut with …)
IN_EDIT_BUDGET = 0.03  # seconds of CPU: analyses that took less than this last time run in the edit itself


@dataclass(frozen=True)
class InspectorRequest:
    """What to show: `name` of `snapshot`, its analyses computed on `state` (a FrozenState)."""

    state: object
    snapshot: "Snapshot"
    name: str
    before: "Node | None"  # the node before the edit, for what changed
    index: tuple[int, ...] | None  # the grid cursor's element, if any
    edit: bool = False  # a key changed a value of the node shown (see Inspector.request)


@dataclass(frozen=True)
class _Job:
    """A request as the analyses take it: numbered, with the room and rows the panel had."""

    request: InspectorRequest
    generation: int
    room: int
    visible: tuple[int, int] | None


@dataclass(frozen=True)
class Analysis:
    """Everything the inspector shows about one request (`generation`), computed together."""

    generation: int
    explanation: Explanation
    values: list[Text]  # the value and grad lines
    snapshot: object  # the snapshot the flags belong to
    flags: dict[str, list[str]]  # {node: [one-line reasons]}, for the graph's markers
    teaching: list[Text]  # contributions, paths, per-sample shares, flags of this node
    deferred: int | None = None  # the teaching line standing for sections left uncomputed


class FlagsReady(Message):
    """The flags of every node of `snapshot` ({node: [one-line reasons]}), for the graph's markers."""

    def __init__(self, snapshot: "Snapshot", by_node: dict[str, list[str]]) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.by_node = by_node


class AnalysisReady(Message):
    """An `Analysis`, from the inspector's worker."""

    def __init__(self, analysis: Analysis) -> None:
        super().__init__()
        self.analysis = analysis


class Inspector(VerticalScroll):
    """Renders one node with the chain rule the engine computed through torch.

    The chain rule and, below it, the teaching sections (contributions per consumer, paths
    to the output, per-sample shares, flags) from `ui.teaching.sections` are computed on
    every edit and every move (`request`): in the edit itself when they are cheap, else
    in a thread worker, with "computing…" if they are slow. An edit leaves the sections
    below the panel's edge until they are scrolled into view.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        from backprop_tui.ui.teaching.sections import SnapshotCache

        self._cache = SnapshotCache()
        self._generation = 0  # one per request: older results are dropped
        self._awaiting: tuple | None = None  # (generation, node, before, output, index) awaiting its chain rule
        self._requests_lock = threading.Lock()
        self._latest_request: _Job | None = None  # the newest request not yet taken by the worker
        self._analysing = False  # a worker is taking requests
        self._heights: dict[str, tuple[int, int | None]] = {}  # each block's (width, height) when last updated
        self._shown: dict[str, list[Text]] = {}  # each block's lines when last updated
        self._shown_name: str | None = None  # the node the heights belong to
        self._costs: dict[str, float] = {}  # by node: seconds its last complete analysis took
        self._deferred: int | None = None  # the teaching block's line standing for uncomputed sections
        self._cost_preset: object = None  # the preset they were measured on

    def compose(self):
        # TextBlocks, not Statics: they render only the rows on screen (the teaching
        # sections are often taller than the panel)
        yield TextBlock(id="inspector-body")
        yield TextBlock(id="inspector-teaching")
        yield TextBlock(id="inspector-details")

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
        if node.name != self._shown_name:  # another node: its blocks may shrink to fit
            self._shown_name = node.name
            self._heights.clear()
            self.scroll_home(animate=False)  # a new node is read from its top
        title = Text(node.name, style="bold")
        title.append(f"  {node.kind}", style="cyan")
        if node.module:
            title.append(f"  of {node.module} ({explanation.module or 'nn.Module'})", style="dim")
        lines: list[Text] = [title]
        lines.extend(Text(line, style="dim") for line in explanation.module_lines)
        if node.expr:
            lines.append(Text.assemble(("expr  ", "dim"), node.expr))
        if values is None:
            values = self._values(node, previous, output, cursor, self._room())
        lines.extend(values)
        lines.append(Text.assemble(("chain rule  ", "bold"), explanation.chain_rule))
        if explanation.matrix_forms:
            lines.append(Text("in matrix form (what backward multiplies; no Jacobian is built)", style="dim"))
            lines.extend(Text(f"  {form}") for form in explanation.matrix_forms)
        if explanation.local:
            lines.append(Text("local derivatives (other inputs held fixed)", style="dim"))
            for line, values in zip_longest(explanation.local, explanation.local_values):
                lines.append(Text(f"  {line}"))
                if values is not None:
                    lines.extend(self._local_values(node, values, cursor))
        if explanation.backward_forms:
            lines.append(Text(f"backward through {node.name} in matrix form (no Jacobian is built)", style="dim"))
            lines.extend(Text(f"  {form}") for form in explanation.backward_forms)
        self._update("#inspector-body", lines)
        lines = [Text("")]
        grad_fn = node.grad_fn or ("AccumulateGrad (a leaf)" if node.requires_grad else "none: not tracked")
        lines.append(Text.assemble(("shape ", "dim"), f"{shape_text(node.shape)} {node.dtype}",
                                   ("  grad_fn ", "dim"), grad_fn))
        loaded = explanation.loaded_requires_grad
        toggled = loaded is not None and loaded != node.requires_grad
        lines.append(Text.assemble(("requires_grad ", "dim"), str(node.requires_grad),
                                   (f"  (the preset sets {loaded}; g toggles it)" if toggled else "", "dim")))
        lines.append(Text.assemble(("inputs ", "dim"), ", ".join(node.inputs) or "none (a leaf)"))
        lines.append(Text.assemble(("consumers ", "dim"), ", ".join(node.consumers) or "none"))
        if node.note and toggled:
            # the note was written for the preset's flag and may say the opposite of what is shown
            lines.append(Text.assemble((f"the preset's note, written for requires_grad {loaded}: ", "dim"),
                                       (node.note, "italic dim")))
        elif node.note:
            lines.append(Text(node.note, style="italic"))
        self._update("#inspector-details", lines)

    def _local_values(self, node: "Node", values, cursor: tuple[int, ...] | None) -> list[Text]:
        """A pointwise step's local derivative at each element, as an aligned matrix (the
        top-left corner of a big one), and at the selected element."""
        lines = []
        if cursor and len(cursor) == values.ndim:
            lines.append(Text(f"    at {node.name}{index_text(cursor)}: {fmt(float(values[tuple(cursor)]))}"))
        room = self._room() - 4
        width = matrix_width([values], [False], max_rows=LOCAL_ROWS, max_cols=max(1, (room - 10) // 2))
        lines.extend(Text("    ").append_text(row) for row in matrix(
            values, width, max_rows=LOCAL_ROWS, max_cols=max(1, (room - 10) // (width + 1)), cursor=cursor))
        return lines

    def clear(self) -> None:
        for block in self.query(TextBlock):
            block.update([])
        self._heights.clear()
        self._shown.clear()
        self._shown_name = None

    def _update(self, selector: str, lines: list[Text]) -> None:
        """TextBlock.update, with a layout pass only when the block grows.

        A layout pass arranges the whole screen and costs more than repainting the
        inspector. While one node is shown, a block that would shrink keeps its height
        with blank lines: an edit repaints it in place, and the panel does not jump.
        """
        block = self.query_one(selector, TextBlock)
        if self._shown.get(selector) == lines:
            return  # nothing new: no repaint (details and flags often stay the same)
        self._shown[selector] = lines
        width = block.size.width
        height = block.height_for(lines, width) if width > 0 else None
        # the height it was given, if at this width (a resize or a scrollbar changes it)
        shown_width, shown = self._heights.get(selector, (None, None))
        if shown_width != width:
            shown = None
        if height is not None and shown is not None and height < shown:
            lines = [*lines, *[Text("")] * (shown - height)]
            height = shown
        self._heights[selector] = (width, height)
        block.update(lines, layout=height is None or height != shown)

    # ------------------------------------------------------------ analyses: in the edit or a worker

    def request(self, request: InspectorRequest, shared=None) -> None:
        """Show the request's node with its analyses (computed on its FrozenState); the
        flags of the whole graph go out as a FlagsReady message.

        The chain rule, the teaching sections and the flags all run forward and backward
        passes on private graphs. When they took under IN_EDIT_BUDGET of CPU last time
        for this node (or, at first, when the preset is small) they run here, so that an
        edit is drawn once, complete. Otherwise they run in a worker: the panel keeps what
        it showed until they arrive, and says "computing…" if that takes long.

        `shared`: the session's own pass for this snapshot (live.session_pass), which the
        analyses use instead of running one more when they run here; a worker never
        gets it, since the next edit writes into the tensors it holds.

        `edit`: a key changed a value of the node shown. Then the teaching sections that
        start below the panel's edge are left until they are scrolled into view (see
        inspector_sections); the panel keeps its height meanwhile, so nothing on screen
        moves. A node newly shown gets every section, and so does a change that is not an
        edit (a preset opened, a restore): what is drawn then never depends on whether a
        layout has happened yet.
        """
        self._generation += 1
        generation = self._generation
        state, snapshot, name = request.state, request.snapshot, request.name
        self._awaiting = (generation, snapshot.node(name), request.before, snapshot.output, request.index)
        visible = self._teaching_visible() if request.edit and name == self._shown_name else None
        job = _Job(request, generation, self._room(), visible)
        if state.preset is not self._cost_preset:  # another preset: its costs are unknown
            self._cost_preset, self._costs = state.preset, {}
        cost = self._costs.get(name)
        in_edit = is_light(snapshot) if cost is None else cost < IN_EDIT_BUDGET
        if in_edit:
            if shared is not None:
                from backprop_tui.engine.analysis.live import share_pass  # torch: not at start-up

                share_pass(state, shared)
            self._apply(self._compute(lambda: generation != self._generation, job))
            return
        with self._requests_lock:
            self._latest_request = job
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
                    job, self._latest_request = self._latest_request, None
                    if job is None:
                        self._analysing = False
                        return

                def cancelled(generation: int = job.generation) -> bool:
                    return worker.is_cancelled or generation != self._generation

                analysis = self._compute(cancelled, job)
                if analysis is not None:
                    # one message: the panel and the graph's flags change in one frame
                    self.post_message(AnalysisReady(analysis))
        finally:
            with self._requests_lock:
                self._analysing = False

    def _compute(self, cancelled: Callable[[], bool], job: _Job) -> "Analysis | None":
        """Every analysis of one request; None if a newer request made it moot. Reads no widget."""
        from backprop_tui.ui.teaching.explain import explain
        from backprop_tui.ui.teaching.sections import compute_flags, inspector_sections

        request = job.request
        state, snapshot, name, index = request.state, request.snapshot, request.name, request.index

        if cancelled():
            return None
        started = time.thread_time()  # CPU time: what the analyses need, whatever the load
        # the matrices too: formatting every element of a big tensor takes a while
        values = self._values(snapshot.node(name), request.before, snapshot.output, index, job.room)
        explanation = explain(state, name, snapshot.buffers)
        if cancelled():
            return None
        flags = compute_flags(state, snapshot, self._cache)
        lines, deferred = inspector_sections(state, snapshot, name, index, self._cache, cancelled, job.visible,
                                             job.room)
        if cancelled():
            return None
        self._costs[name] = time.thread_time() - started
        return Analysis(job.generation, explanation, values, snapshot, flags, lines, deferred)

    def on_analysis_ready(self, message: AnalysisReady) -> None:
        message.stop()
        self._apply(message.analysis)

    def _apply(self, analysis: "Analysis | None") -> None:
        if analysis is None:
            return
        pending = self._awaiting
        if pending is None or pending[0] != analysis.generation:
            return  # a newer edit or node superseded it
        self._awaiting = None
        _, node, before, output, index = pending
        self.show(node, before, analysis.explanation, output, index, analysis.values)
        self._show_teaching(analysis.teaching)
        self.post_message(FlagsReady(analysis.snapshot, analysis.flags))
        self._deferred = None if analysis.deferred is None else analysis.deferred + 1  # after the blank line
        if self._deferred is not None:
            self.call_after_refresh(self._check_deferred)  # the blocks above may have shrunk

    def _show_teaching(self, lines: list[Text]) -> None:
        self._update("#inspector-teaching", [Text(""), *lines] if lines else [])

    # ------------------------------------------------------------ sections below the panel's edge

    def _teaching_visible(self) -> tuple[int, int] | None:
        """(rows, width) of the teaching sections on screen (None before the first layout:
        all of them). The teaching block starts with a blank line."""
        block = self.query_one("#inspector-teaching", TextBlock)
        height, width = self.scrollable_content_region.height, block.size.width
        if height <= 0 or width <= 0:
            return None
        return max(0, round(self.scroll_y) + height - block.virtual_region.y - 1), width

    def _check_deferred(self) -> None:
        """Ask for the uncomputed sections once their line is on screen."""
        if self._deferred is None:
            return
        block = self.query_one("#inspector-teaching", TextBlock)
        visible = self._teaching_visible()
        if visible is None or block.height_for(self._shown.get("#inspector-teaching", [])[1:self._deferred],
                                               visible[1]) < visible[0]:
            self._deferred = None
            self.post_message(InspectAgain())

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            self._check_deferred()

    def on_resize(self) -> None:
        self.call_after_refresh(self._check_deferred)

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
        # as many columns as fit: "[", " x" per column, " … +N", " ]"; the width is
        # measured on as many columns as could fit (numbers are at least 1 wide)
        width = matrix_width([node.value, node.grad], [False, True], max_cols=max(1, (room - 10) // 2))
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
            lines.append(
                Text(f"{int(mask.sum())} element(s) changed with the last edit (shown reversed)", style=CHANGED)
            )
        return lines

