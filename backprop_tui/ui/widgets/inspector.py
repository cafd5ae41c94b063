"""`#inspector`: everything about the highlighted node, and the chain rule with numbers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Group
from rich.text import Text
from textual import work
from textual.containers import VerticalScroll
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


@dataclass(frozen=True)
class Explanation:
    """What the engine's analyses say about a node (engine.analysis.local)."""

    chain_rule: str  # e.g. ∂f/∂h = ∂f/∂g · ∂g/∂h = 18 · 12 = 216, or why there is no grad
    local: tuple[str, ...] = ()  # one line per input of a step: d/dh (h³ + 1) = 3h² = 12


class Inspector(VerticalScroll):
    """Renders one node; the app passes the chain rule it computed through torch.

    Below the chain rule, the teaching sections (contributions per consumer, paths to the
    output, per-sample shares, flags) come from `ui.teaching.sections`: computed at once
    for small presets, in a thread worker for big ones ("computing…" meanwhile).
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        from backprop_tui.ui.teaching.sections import SnapshotCache

        self._cache = SnapshotCache()
        self._generation = 0

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
    ) -> None:
        # What a learner looks for first (value, grad, chain rule) comes first: the
        # details below may scroll out of a small terminal.
        title = Text(node.name, style="bold")
        title.append(f"  {node.kind}", style="cyan")
        if node.module:
            title.append(f"  of {node.module} (nn.Linear)", style="dim")
        lines: list[Text] = [title]
        if node.expr:
            lines.append(Text.assemble(("expr  ", "dim"), node.expr))
        lines.extend(self._values(node, previous, output, cursor))
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

    # ------------------------------------------------------------ teaching sections

    def analyse(self, state, snapshot, name: str, index: tuple[int, ...] | None) -> None:
        """Contributions, paths, per-sample shares and flags of `name` on a FrozenState."""
        from backprop_tui.ui.teaching.sections import compute_flags, inspector_sections, is_light

        self._generation += 1
        if is_light(snapshot):
            lines = inspector_sections(state, snapshot, name, index, self._cache)
            self._show_teaching(lines)
            self.post_message(FlagsReady(snapshot, compute_flags(state, snapshot, self._cache)))
            return
        self._show_teaching([Text("computing…", style="dim italic")])
        self._analyse(state, snapshot, name, index, self._generation)

    @work(thread=True, exclusive=True, group="inspector-teaching")
    def _analyse(self, state, snapshot, name: str, index, generation: int) -> None:
        from backprop_tui.ui.teaching.sections import compute_flags, inspector_sections

        worker = get_current_worker()
        self.post_message(FlagsReady(snapshot, compute_flags(state, snapshot, self._cache)))

        def cancelled() -> bool:
            return worker.is_cancelled or generation != self._generation

        lines = inspector_sections(state, snapshot, name, index, self._cache, cancelled)
        if not cancelled():
            self.post_message(TeachingReady(generation, lines))

    def on_teaching_ready(self, message: TeachingReady) -> None:
        message.stop()
        if message.generation == self._generation:
            self._show_teaching(message.lines)

    def _show_teaching(self, lines: list[Text]) -> None:
        self.query_one("#inspector-teaching", Static).update(Group(Text(""), *lines) if lines else "")

    def _values(
        self, node: "Node", previous: "Node | None", output: str, cursor: tuple[int, ...] | None
    ) -> list[Text]:
        if not node.shape:
            return [
                Text.assemble(("value  ", "dim"), value_of(node, previous)),
                Text.assemble((f"grad   ∂{output}/∂{node.name} = ", "dim"), grad_of(node, previous)),
            ]
        width = matrix_width([node.value, node.grad], [False, True])
        # as many columns as fit: "[", " x" per column, " … +N", " ]"
        room = max(20, self.scrollable_content_region.width)
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

