"""`#weights`: every leaf, and the selected one's elements in a grid (index, value, grad).

Enter edits the element under the cursor through an Input below the grid; the text is
read by the engine's `parse_number`, so the UI accepts exactly what the engine does.
The widget owns no math: it posts SetElement / Nudge / ToggleRequiresGrad / ResetLeaf.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from backprop_tui.ui.format import fmt, index_text, shape_text
from backprop_tui.ui.messages import Inspect, Nudge, ResetLeaf, SetElement, ToggleRequiresGrad
from backprop_tui.ui.widgets.element_grid import ElementGrid, GridPage

if TYPE_CHECKING:
    from backprop_tui.engine.snapshot import Node, Snapshot

PAGE_SIZE = 500  # elements per page of the grid: big tensors are paged, never one row each
DEFAULT_STEP = 0.1
MIN_STEP, MAX_STEP = 1e-9, 1e9


def nudge_step(snapshot: "Snapshot") -> float:
    """A tenth of the typical magnitude (median |x|, zeros left out) of the preset's
    parameters (float leaves that require grad), rounded down to a power of ten, as [ and ]
    scale it: mlp_784's weights of about 0.02 are nudged by 0.001, simple_nn's by 0.1."""
    magnitudes = [np.abs(node.value.reshape(-1).astype(np.float64)) for node in snapshot.leaves
                  if node.requires_grad and node.dtype != "int"]
    values = np.concatenate(magnitudes) if magnitudes else np.zeros(0)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return DEFAULT_STEP
    step = 10.0 ** math.floor(math.log10(float(np.median(values)) / 10))
    return min(MAX_STEP, max(MIN_STEP, float(f"{step:.1g}")))


def leaf_prompt(node: "Node") -> Text:
    """`● w`: the marker says whether the leaf requires grad. The list is as wide as its
    longest name where the panel has the room; a name that still does not fit loses its
    end, never its start (the module's name)."""
    marker = "●" if node.requires_grad else "○"
    text = Text(f"{marker} ", style="green" if node.requires_grad else "dim", no_wrap=True)
    text.append(node.name)
    return text


class LeafList(OptionList):
    """The leaves: inputs, targets, parameters. ● requires grad, ○ does not."""

    BINDINGS = [
        Binding("enter", "select", "To grid", id="weights.to_grid", tooltip="Move to the selected leaf's elements."),
    ]


class EditInput(Input):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="weights.cancel_edit", tooltip="Leave the value as it was."),
    ]

    class Cancelled(Message):
        pass

    class MultiLinePaste(Message):
        """Text with line breaks was pasted: refused whole (Input would keep its first line)."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def action_cancel(self) -> None:
        self.post_message(self.Cancelled())

    def on_paste(self, event: events.Paste) -> None:
        if "\n" in event.text or "\r" in event.text:
            event.stop()
            event.prevent_default()  # not Input's own handler, which keeps the first line
            self.post_message(self.MultiLinePaste(event.text))


class WeightEditor(Vertical):
    BINDINGS = [
        # priority: the app runs an edit's nudge when the key arrives; otherwise the key
        # bubbles from the grid up to the screen first, a loop turn per container (1 ms)
        Binding("plus,equals_sign", "nudge(1)", "+step", id="weights.nudge_up", priority=True,
                tooltip="Add the step to the element under the cursor."),
        Binding("minus", "nudge(-1)", "-step", id="weights.nudge_down", priority=True,
                tooltip="Subtract the step from the element under the cursor."),
        Binding("left_square_bracket", "scale_step(0.1)", "step÷10", id="weights.step_down",
                tooltip="Divide the nudge step by 10."),
        Binding("right_square_bracket", "scale_step(10)", "step×10", id="weights.step_up",
                tooltip="Multiply the nudge step by 10."),
        Binding("g", "toggle_grad", "requires_grad", id="weights.requires_grad",
                tooltip="Toggle requires_grad of the selected leaf: only leaves that require grad get a gradient."),
        Binding("r", "reset_leaf", "Reset leaf", id="weights.reset_leaf",
                tooltip="Put the selected leaf back to its value in the preset."),
        Binding("less_than_sign", "page(-1)", "Prev page", id="weights.page_prev",
                tooltip=f"Show the previous {PAGE_SIZE} elements of a large tensor."),
        Binding("greater_than_sign", "page(1)", "Next page", id="weights.page_next",
                tooltip=f"Show the next {PAGE_SIZE} elements of a large tensor."),
    ]

    def __init__(self, cursor_blink: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cursor_blink = cursor_blink
        self.snapshot: Snapshot | None = None
        self.previous: Snapshot | None = None
        self.leaf: str | None = None
        self.page = 0
        self.step = DEFAULT_STEP
        self._editing: tuple[int, ...] | None = None
        self._labels: tuple[str, tuple[str, ...]] | None = None  # (leaf and page, index labels)
        self._info_shown: Text | None = None  # what #leaf-info shows
        self._error_shown = False

    def compose(self):
        with Horizontal(id="weights-body"):
            yield LeafList(id="leaf-list")
            with Vertical(id="leaf-pane"):
                yield Static(id="leaf-info")
                yield ElementGrid(id="grid")
                with Horizontal(id="edit-row"):
                    yield Label(id="edit-target")
                    yield EditInput(id="edit-input", compact=True, select_on_focus=True)
                # under the input, full width: the engine's messages are a sentence long
                yield Label(id="edit-message")
                yield Static(id="step-line")

    def on_mount(self) -> None:
        self.border_title = "Weights: leaves"
        self.query_one(EditInput).cursor_blink = self.cursor_blink

    # ------------------------------------------------------------ from the app

    def load(self, snapshot: "Snapshot") -> None:
        """A new preset: list its leaves and select the first one."""
        self.snapshot, self.previous = snapshot, None
        leaves = snapshot.leaves
        options = self.query_one(LeafList)
        options.clear_options()
        options.add_options([Option(leaf_prompt(n), id=n.name) for n in leaves])
        self._fit_leaf_list()
        self.leaf = None
        self._end_edit()
        self.step = nudge_step(snapshot)
        # not in on_mount: fmt imports the engine package, hence torch, which must
        # wait for the loader thread so that the first screen paints at once
        self._show_step()
        if leaves:
            options.highlighted = 0
            self.select_leaf(leaves[0].name)
        self._fit_height()

    def update_snapshot(self, snapshot: "Snapshot", previous: "Snapshot | None") -> None:
        """An edit happened: relabel leaves and cells in place."""
        self.snapshot, self.previous = snapshot, previous
        self._relabel_leaves()
        if self.leaf is not None:
            self._show_info()
            self._update_cells()

    def _fit_leaf_list(self) -> None:
        """As wide as the longest name (marker, scrollbar and border included), at most
        a third of the panel, so the grid keeps the rest."""
        if self.snapshot is None:
            return
        longest = max((len(node.name) for node in self.snapshot.leaves), default=0)
        cap = max(12, (self.size.width - 2) // 3) if self.size.width else 20
        width = min(longest + 6, cap)  # marker and blank, padding, scrollbar, border
        options = self.query_one(LeafList)
        if options.styles.width is None or options.styles.width.value != width:
            options.styles.width = width

    def _relabel_leaves(self) -> None:
        if self.snapshot is None:
            return
        options = self.query_one(LeafList)
        for node in self.snapshot.leaves:
            prompt = leaf_prompt(node)
            if options.get_option(node.name).prompt != prompt:  # an unchanged list is not repainted
                options.replace_option_prompt(node.name, prompt)

    def on_resize(self) -> None:
        self._fit_leaf_list()

    def select_leaf(self, name: str, focus_grid: bool = False) -> None:
        if self.snapshot is None or name not in self.snapshot:
            return
        options = self.query_one(LeafList)
        index = options.get_option_index(name)
        if options.highlighted != index:
            options.highlighted = index
        if name != self.leaf:
            self.leaf = name
            self.page = 0
            self._end_edit()
            self._fill_grid()
            self._show_info()
            self._fit_height()
        if focus_grid:
            self.query_one(ElementGrid).focus()

    def edit_succeeded(self) -> None:
        self._end_edit(focus_grid=True)

    def edit_failed(self, message: str) -> None:
        """The engine refused the value: say why beside the input, which keeps focus."""
        self.query_one("#edit-message", Label).update(Text(message, style="bold red"))
        self.query_one(EditInput).focus()
        self._error_shown = True
        self._fit_height()  # room for the message to wrap onto a second and third line

    @property
    def editing(self) -> bool:
        return self._editing is not None

    # ------------------------------------------------------------ grid

    @property
    def node(self) -> "Node | None":
        if self.snapshot is None or self.leaf is None:
            return None
        return self.snapshot.node(self.leaf)

    def _page_range(self, node: "Node") -> range:
        start = self.page * PAGE_SIZE
        return range(start, min(node.value.size, start + PAGE_SIZE))

    def _fill_grid(self) -> None:
        """Another leaf or page: the grid shows it from its top."""
        node = self.node
        if node is not None:
            self.query_one(ElementGrid).show(self._grid_page(node), reset=True)

    def _update_cells(self) -> None:
        """An edit: the grid repaints the rows whose numbers changed."""
        self.query_one(ElementGrid).show(self._grid_page(self.node))

    def _grid_page(self, node: "Node") -> GridPage:
        r = self._page_range(node)
        key = f"{node.name}/{self.page}/{node.shape}"
        if self._labels is None or self._labels[0] != key:  # the same tuple while the page is shown
            self._labels = key, tuple(index_text(_unravel(flat, node.shape)) for flat in r)
        before = self._before(node)

        def page(array):
            return None if array is None else array.reshape(-1)[r.start:r.stop]

        return GridPage(
            self._labels[1], page(node.value), page(node.grad),
            None if before is None else page(before.value), None if before is None else page(before.grad),
        )

    def _before(self, node: "Node") -> "Node | None":
        if self.previous is not None and node.name in self.previous:
            before = self.previous.node(node.name)
            if before.shape == node.shape:
                return before
        return None

    def _cursor_index(self) -> tuple[int, ...] | None:
        node = self.node
        grid = self.query_one(ElementGrid)
        if node is None or grid.row_count == 0:
            return None
        flat = self.page * PAGE_SIZE + grid.cursor_row
        return _unravel(flat, node.shape)

    def _show_info(self) -> None:
        node = self.node
        if node is None:
            return
        text = Text.assemble((node.name, "bold"), f"  {node.kind}  {shape_text(node.shape)}  {node.dtype}  ")
        if node.requires_grad:
            text.append("● requires_grad", style="green")
        else:
            text.append("○ requires_grad off", style="dim")
        pages = math.ceil(node.value.size / PAGE_SIZE)
        if pages > 1:
            r = self._page_range(node)
            text.append(f"  elements {r.start}–{r.stop - 1} of {node.value.size}", style="dim")
        info = self.query_one("#leaf-info", Static)
        if text != self._info_shown:  # one line of fixed height: a repaint, no layout pass
            self._info_shown = text
            info.update(text, layout=False)

    def _fit_height(self) -> None:
        """Ask for the rows the content needs, so a scalar leaves room for the inspector.

        CSS caps it (max-height), and the grid inside is 1fr, so a big tensor scrolls.
        """
        if self.snapshot is None:
            return
        node = self.node
        rows = 0 if node is None else len(self._page_range(node))
        leaves = len(self.snapshot.leaves)
        message_rows = 3 if self._error_shown else 1
        # info, grid header, rows, edit row, message, step line
        inner = max(leaves, 1 + 1 + rows + 1 + message_rows + 1)
        self.styles.height = max(7, inner + 2)

    def _show_step(self) -> None:
        line = Text.assemble(("step ", "dim"), (f"±{fmt(self.step)}", "bold"), ("  [ ÷10  ] ×10", "dim"))
        self.query_one("#step-line", Static).update(line)

    # ------------------------------------------------------------ editing

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option_index != event.option_list.highlighted:
            # stale: keys typed quickly moved the highlight on before this arrived, and
            # following it would move it back, posting another; two such messages swapped
            # the highlight forever, refilling the grid (and resetting its cursor)
            return
        if event.option.id is not None:
            self.select_leaf(event.option.id)
            if event.option_list.has_focus:  # not when the app moves the highlight itself
                self.post_message(Inspect(event.option.id))

    def on_descendant_focus(self, event) -> None:
        # the inspector follows the panel the user is in
        if self.leaf is not None and not isinstance(event.widget, EditInput):
            index = self._cursor_index() if isinstance(event.widget, ElementGrid) else None
            self.post_message(Inspect(self.leaf, index))

    def on_element_grid_cursor_moved(self, event: ElementGrid.CursorMoved) -> None:
        # the element under the grid's cursor is underlined in the inspector's matrices
        event.stop()
        if self.leaf is not None and self.query_one(ElementGrid).has_focus:
            self.post_message(Inspect(self.leaf, self._cursor_index()))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.select_leaf(event.option.id, focus_grid=True)

    def on_element_grid_edit_requested(self, event: ElementGrid.EditRequested) -> None:
        event.stop()
        index = self._cursor_index()
        node = self.node
        if index is None or node is None:
            return
        self._editing = index
        x = node.value[index] if index else node.value.reshape(-1)[0]
        self.query_one("#edit-target", Label).update(Text(f"{node.name}{index_text(index) if index else ''} = "))
        message = "whole number (class index)" if node.dtype == "int" else "enter: set  esc: cancel"
        self.query_one("#edit-message", Label).update(Text(message, style="dim"))
        self._show_edit_row(True)
        edit = self.query_one(EditInput)
        edit.value = fmt(x)
        edit.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        node = self.node
        if self._editing is None or node is None:
            return
        from backprop_tui.engine import EditError
        from backprop_tui.engine.numbers import parse_number

        try:
            value = parse_number(event.value, integer=node.dtype == "int")
        except EditError as exc:
            self.edit_failed(str(exc))
            return
        self.post_message(SetElement(node.name, self._editing, value))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._error_shown:
            self._error_shown = False
            self._fit_height()
        if self._editing is not None:
            self.query_one("#edit-message", Label).update(Text("enter: set  esc: cancel", style="dim"))

    def on_edit_input_multi_line_paste(self, event: EditInput.MultiLinePaste) -> None:
        event.stop()
        from backprop_tui.engine import EditError
        from backprop_tui.engine.numbers import parse_number

        try:  # the engine says why (one number only, on one line); the input keeps its text
            parse_number(event.text)
        except EditError as exc:
            self.edit_failed(str(exc))

    def on_edit_input_cancelled(self, event: EditInput.Cancelled) -> None:
        event.stop()
        self._end_edit(focus_grid=True)

    def _show_edit_row(self, editing: bool) -> None:
        # Hidden when not editing, so tab skips the input; the message line then
        # shows a hint, so the panel does not jump when editing starts.
        self.query_one("#edit-row").display = editing
        if not editing:
            self.query_one("#edit-message", Label).update(Text("enter edit · +/- nudge", style="dim"))

    def _end_edit(self, focus_grid: bool = False) -> None:
        was_editing = self._editing is not None
        self._editing = None
        self._show_edit_row(False)
        if self._error_shown:
            self._error_shown = False
            self._fit_height()
        if focus_grid and was_editing:
            self.query_one(ElementGrid).focus()

    # ------------------------------------------------------------ keys

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "nudge":
            return not self.editing  # while a value is typed, + and - are characters of it
        if action == "page":
            node = self.node
            return node is not None and node.value.size > PAGE_SIZE
        return True

    def action_nudge(self, direction: int) -> None:
        node, index = self.node, self._cursor_index()
        if node is None or index is None or self.editing:
            return
        # class indices move by whole numbers
        step = max(1, round(self.step)) if node.dtype == "int" else self.step
        # to the app itself: bubbling up through the containers takes a loop turn each
        self.app.post_message(Nudge(node.name, index, direction * step))

    def action_scale_step(self, factor: float) -> None:
        step = float(f"{self.step * factor:.6g}")  # 0.1 * 10 = 1.0000000000000002 otherwise
        self.step = min(MAX_STEP, max(MIN_STEP, step))
        self._show_step()

    def action_toggle_grad(self) -> None:
        if self.leaf is not None:
            self.post_message(ToggleRequiresGrad(self.leaf))

    def action_reset_leaf(self) -> None:
        if self.leaf is not None:
            self.post_message(ResetLeaf(self.leaf))

    def action_page(self, direction: int) -> None:
        node = self.node
        if node is None:
            return
        pages = math.ceil(node.value.size / PAGE_SIZE)
        page = min(pages - 1, max(0, self.page + direction))
        if page != self.page:
            self.page = page
            self._fill_grid()
            self._show_info()


def _unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()
