"""`#weights`: every leaf, and the selected one's elements in a grid (index, value, grad).

Enter edits the element under the cursor through an Input below the grid; the text is
read by the engine's `parse_number`, so the UI accepts exactly what the engine does.
The widget owns no math: it posts SetElement / Nudge / ToggleRequiresGrad / ResetLeaf.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

import numpy as np
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Label, OptionList, Static
from textual.widgets.data_table import CellDoesNotExist, CellKey, ColumnKey, Row, RowKey
from textual.widgets.option_list import Option

from backprop_tui.ui.format import (
    CHANGED,
    NO_GRAD,
    delta_text,
    fmt,
    grad_number,
    index_text,
    shape_text,
    value_number,
)
from backprop_tui.ui.messages import Inspect, Nudge, ResetLeaf, SetElement, ToggleRequiresGrad

if TYPE_CHECKING:
    from backprop_tui.engine.snapshot import Node, Snapshot

PAGE_SIZE = 500  # elements per page of the grid: big tensors are paged, never one row each
DEFAULT_STEP = 0.1
MIN_STEP, MAX_STEP = 1e-9, 1e9


def leaf_prompt(node: "Node", width: int = 0) -> Text:
    """`● w`: the marker says whether the leaf requires grad.

    A name too long for `width` loses its start, not its end: `…r1.weight` and
    `…r1.bias` stay distinguishable where `linear1.we…` and `linear1.bi…` might not.
    """
    marker = "●" if node.requires_grad else "○"
    text = Text(f"{marker} ", style="green" if node.requires_grad else "dim", no_wrap=True)
    name = node.name
    room = width - 2
    if width and len(name) > room > 1:
        name = "…" + name[-(room - 1):]
    text.append(name)
    return text


class LeafList(OptionList):
    """The leaves: inputs, targets, parameters. ● requires grad, ○ does not."""

    BINDINGS = [
        Binding("enter", "select", "To grid", id="weights.to_grid", tooltip="Move to the selected leaf's elements."),
    ]


class ElementGrid(DataTable):
    """The selected leaf's elements: index, value, grad."""

    BINDINGS = [
        Binding("enter", "edit", "Edit", id="weights.edit", tooltip="Type a new value for the element under the cursor."),
    ]

    class EditRequested(Message):
        pass

    def __init__(self, **kwargs) -> None:
        # before DataTable's __init__, whose watchers render
        self._versions: dict[CellKey, int] = {}  # by cell: how many update_cell calls it had
        self._cell_updates = 0  # update_cell calls in all
        super().__init__(**kwargs)
        self.on_scrolled: Callable[[], None] = lambda: None  # the editor writes rows that came into view

    # An edit changes a cell or two; DataTable (private API of the pinned textual) then
    # repaints the whole table, and keys its caches on `_update_count`, which every
    # update_cell bumps, so every cell on screen went through Rich again (~0.5 ms a line).
    # Here update_cell repaints the cell's row only, and the caches below hold the cell's
    # own version for `_update_count`: the row's other cells are not rendered again.
    # Whatever else bumps `_update_count` (rows or columns added or removed, sort,
    # resize) still invalidates them all, and they live in DataTable's own caches, so
    # every place that clears those (styles, cursor, padding) clears them too.

    def update_cell(self, row_key, column_key, value, *, update_width: bool = False) -> None:
        row_key = RowKey(row_key) if isinstance(row_key, str) else row_key
        column_key = ColumnKey(column_key) if isinstance(column_key, str) else column_key
        if update_width:  # the column may widen: all rows move
            super().update_cell(row_key, column_key, value, update_width=True)
        else:  # DataTable.update_cell, but the row only is repainted
            if row_key not in self._row_locations or column_key not in self._column_locations:
                raise CellDoesNotExist(f"No cell exists for row_key={row_key!r}, column_key={column_key!r}.")
            self._data[row_key][column_key] = value
            self._update_count += 1
            self.refresh_row(self._row_locations.get(row_key))
        cell = CellKey(row_key, column_key)
        self._versions[cell] = self._versions.get(cell, 0) + 1
        self._cell_updates += 1

    def clear(self, columns: bool = False):
        self._versions.clear()  # the rows, and their keys, are gone
        return super().clear(columns)

    @property
    def _layout_version(self) -> tuple[str, int]:
        """`_update_count` less update_cell's bumps: the rows and columns, and where they are."""
        return "ElementGrid", self._update_count - self._cell_updates

    @property
    def ordered_rows(self) -> list[Row]:
        # DataTable lists all the page's rows (500) again on each `_update_count`: after every
        # update_cell, for the region refresh_row repaints and the line offsets below
        key = (self.row_count, self._layout_version)
        rows = self._ordered_row_cache.get(key)
        if rows is None:
            rows = self._ordered_row_cache[key] = DataTable.ordered_rows.fget(self)
        return rows

    @property
    def _y_offsets(self) -> list[tuple[RowKey, int]]:
        key = self._layout_version
        offsets = self._offset_cache.get(key)
        if offsets is None:
            offsets = self._offset_cache[key] = DataTable._y_offsets.fget(self)
        return offsets

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> list[list[Segment]]:
        row_key = self._header_row_key if row_index == -1 else self._row_locations.get_key(row_index)
        cell = CellKey(row_key, self._column_locations.get_key(column_index))
        key = (  # DataTable's key, with the cell's version for `_update_count`, and the width
            self._layout_version, self._versions.get(cell, 0), row_index, column_index, base_style,
            width, cursor, hover, self._show_hover_cursor, self._pseudo_class_state,
        )
        lines = self._cell_render_cache.get(key)
        if lines is None:
            lines = self._render_text_cell(row_index, column_index, base_style, width, cursor, hover)
            if lines is None:
                lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
            self._cell_render_cache[key] = lines
        return lines

    def _render_text_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                          cursor: bool, hover: bool) -> list[list[Segment]] | None:
        """DataTable._render_cell's segments for a Text one line high (all the grid's
        cells), or None for any other cell: DataTable renders Styled(Padding(cell))
        through console.render_lines, three layers of Rich for what is the cell's
        line, its padding either side, and two styles over them."""
        header = row_index == -1
        if column_index == -1 or width <= 2 * self.cell_padding:
            return None
        height = self.header_height if header else self.rows[self._row_locations.get_key(row_index)].height
        cell = self._get_row_renderables(row_index).cells[column_index]
        if height != 1 or not isinstance(cell, Text):
            return None
        fixed = not header and (row_index < self.fixed_rows or column_index < self.fixed_columns)
        component_style, post_style = self._get_styles_to_render_cell(
            header, False, fixed, hover, cursor, self.show_cursor, self._show_hover_cursor,
            self.cursor_foreground_priority == "css", self.cursor_background_priority == "css",
        )
        style = base_style + Style.from_meta({"row": row_index, "column": column_index}) + component_style
        pad = self.cell_padding
        # the options Padding renders the cell with, and its line as Padding pads it
        options = self.app.console_options.update_dimensions(width, 1).update(no_wrap=True)
        options = options.update_width(width - 2 * pad).update_height(1)
        console = self.app.console
        none = console.get_style("none")  # Padding's style
        line = console.render_lines(cell, options, style=none, pad=True)[0]
        if pad:
            line = [Segment(" " * pad, none), *line, Segment(" " * pad, none)]
        return [list(Segment.apply_style(line, style, post_style))]

    def action_edit(self) -> None:
        self.post_message(self.EditRequested())

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self.on_scrolled()

    def visible_rows(self, margin: int = 2) -> range:
        """The data rows on screen (and `margin` more each side), by position."""
        top = int(self.scroll_y)
        return range(max(0, top - margin), min(self.row_count, top + self.size.height + margin))


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

    def _on_paste(self, event: events.Paste) -> None:
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
        self._row_keys: list = []
        self._shown_cells: list[tuple[Text, Text]] = []  # by row: the value and grad cells shown
        self._shown_inputs: tuple | None = None  # what they were made from (_page_inputs)
        self._measured = False  # the column widths fit the cells shown
        self._info_shown: Text | None = None  # what #leaf-info shows
        self._pending_rows: set[int] = set()  # rows of the page not rewritten since they changed (off screen)
        self._error_shown = False

    def compose(self):
        with Horizontal(id="weights-body"):
            yield LeafList(id="leaf-list")
            with Vertical(id="leaf-pane"):
                yield Static(id="leaf-info")
                yield ElementGrid(id="grid", cursor_type="row", zebra_stripes=False)
                with Horizontal(id="edit-row"):
                    yield Label(id="edit-target")
                    yield EditInput(id="edit-input", compact=True, select_on_focus=True)
                # under the input, full width: the engine's messages are a sentence long
                yield Label(id="edit-message")
                yield Static(id="step-line")

    def on_mount(self) -> None:
        self.border_title = "Weights: leaves"
        self.query_one(EditInput).cursor_blink = self.cursor_blink
        grid = self.query_one(ElementGrid)
        grid.on_scrolled = self._on_grid_scrolled
        grid.add_column("index", key="index")
        grid.add_column("value", key="value")
        grid.add_column("grad", key="grad")

    # ------------------------------------------------------------ from the app

    def load(self, snapshot: "Snapshot") -> None:
        """A new preset: list its leaves and select the first one."""
        self.snapshot, self.previous = snapshot, None
        leaves = snapshot.leaves
        options = self.query_one(LeafList)
        options.clear_options()
        options.add_options([Option(leaf_prompt(n, self._name_width()), id=n.name) for n in leaves])
        self.leaf = None
        self._end_edit()
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

    def _name_width(self) -> int:
        return self.query_one(LeafList).scrollable_content_region.width

    def _relabel_leaves(self) -> None:
        if self.snapshot is None:
            return
        options = self.query_one(LeafList)
        width = self._name_width()
        for node in self.snapshot.leaves:
            prompt = leaf_prompt(node, width)
            if options.get_option(node.name).prompt != prompt:  # an unchanged list is not repainted
                options.replace_option_prompt(node.name, prompt)

    def on_resize(self) -> None:
        self._relabel_leaves()

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
        node = self.node
        grid = self.query_one(ElementGrid)
        grid.clear()
        self._shown_inputs = None
        if node is None:
            return
        rows = []
        cells = []
        for flat in self._page_range(node):
            index = _unravel(flat, node.shape)
            value, grad = self._cells(node, index)
            cells.append((value, grad))
            rows.append((Text(index_text(index), style="dim"), value, grad))
        self._row_keys = grid.add_rows(rows)
        self._shown_cells = cells
        self._pending_rows.clear()
        self._shown_inputs = self._page_inputs(node)
        self._measured = False  # the columns keep their old widths until _update_cells measures
        grid.move_cursor(row=0)

    def _page_inputs(self, node: "Node") -> tuple:
        """What the page's cells are made from: (leaf, page, value, value before, grad, grad before)."""
        before = self._before(node)
        r = self._page_range(node)

        def page(array):
            return None if array is None else array.reshape(-1)[r.start:r.stop].copy()

        return (
            node.name, self.page, page(node.value), None if before is None else page(before.value),
            page(node.grad), None if before is None else page(before.grad),
        )

    def _update_cells(self) -> None:
        """Rewrite only the cells whose inputs (value, grad, and their values before) changed."""
        node = self.node
        grid = self.query_one(ElementGrid)
        inputs = self._page_inputs(node)
        shown = self._shown_inputs
        rows = len(self._row_keys)
        if shown is None or shown[:2] != inputs[:2] or len(self._shown_cells) != rows:
            stale = np.ones(rows, dtype=bool)
        else:
            same = np.ones(rows, dtype=bool)
            for new, old in zip(inputs[2:], shown[2:]):
                same &= _same_elements(new, old, rows)
            stale = ~same
        # Only rows on screen are written now (a page holds 500, a 100x30 terminal shows
        # 5): the others wait in _pending_rows until they scroll into view.
        self._pending_rows.update(int(i) for i in np.flatnonzero(stale))
        self._shown_inputs = inputs
        self._write_rows(grid.visible_rows())
        if not self._measured:  # a page just filled: fit its columns to all its cells once
            self._measured = True
            self._fit_columns(range(rows), grow_only=False)

    def _fit_columns(self, rows, grow_only: bool) -> None:
        """Fit the value and grad columns to the widest of these rows' cells.

        DataTable re-measures the whole column for every cell updated with
        update_width=True (quadratic on a 500-row page): ask once per column, with its
        widest cell. While one page is shown its columns only grow (a new width means a
        layout pass of the whole screen; a new page or leaf fits them again).
        """
        grid = self.query_one(ElementGrid)
        cells = self._shown_cells
        for position, column in enumerate(("value", "grad")):
            widest = max(rows, key=lambda i: cells[i][position].cell_len, default=None)
            if widest is None:
                continue
            if grow_only and cells[widest][position].cell_len <= grid.columns[column].content_width:
                continue
            grid.update_cell(self._row_keys[widest], column, cells[widest][position], update_width=True)

    def _write_rows(self, rows: range) -> None:
        """Rewrite the pending rows among `rows` (positions on the page): only the cells
        whose text changed."""
        node = self.node
        due = [i for i in rows if i in self._pending_rows]
        if node is None or not due:
            return
        grid = self.query_one(ElementGrid)
        cells = self._shown_cells
        for i in due:
            self._pending_rows.discard(i)
            row_key = self._row_keys[i]
            value, grad = self._cells(node, _unravel(self.page * PAGE_SIZE + i, node.shape))
            old_value, old_grad = cells[i]
            if not _same_text(value, old_value):
                grid.update_cell(row_key, "value", value)
            if not _same_text(grad, old_grad):
                grid.update_cell(row_key, "grad", grad)
            cells[i] = (value, grad)
        self._fit_columns(due, grow_only=True)

    def write_pending_rows(self) -> None:
        """Rewrite every row the page holds that is not up to date (rows off screen)."""
        self._write_rows(range(len(self._row_keys)))

    def _on_grid_scrolled(self) -> None:
        if self._pending_rows:
            self._write_rows(self.query_one(ElementGrid).visible_rows())

    def _before(self, node: "Node") -> "Node | None":
        if self.previous is not None and node.name in self.previous:
            before = self.previous.node(node.name)
            if before.shape == node.shape:
                return before
        return None

    def _cells(self, node: "Node", index: tuple[int, ...]) -> tuple[Text, Text]:
        before = None
        if self.previous is not None and node.name in self.previous:
            before = self.previous.node(node.name)
            if before.shape != node.shape:
                before = None
        x = node.value[index] if index else node.value.reshape(-1)[0]
        value = value_number(x)
        if before is not None:
            old = before.value[index] if index else before.value.reshape(-1)[0]
            if old != x:
                value.stylize(CHANGED)
                value.append_text(delta_text(float(x) - float(old)))
        if node.grad is None:
            return value, Text("no grad", style=NO_GRAD, justify="right")
        g = node.grad[index] if index else node.grad.reshape(-1)[0]
        grad = grad_number(g)
        if before is not None and before.grad is not None:
            old_g = before.grad[index] if index else before.grad.reshape(-1)[0]
            if old_g != g:
                grad.stylize("bold")
                grad.append_text(delta_text(float(g) - float(old_g)))
        elif before is not None and before.grad is None:
            grad.stylize("bold")
        value.justify = grad.justify = "right"
        return value, grad

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

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        # the element under the grid's cursor is underlined in the inspector's matrices
        event.stop()
        if self.leaf is not None and event.data_table.has_focus:
            self.post_message(Inspect(self.leaf, self._cursor_index()))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.select_leaf(event.option.id, focus_grid=True)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # a click on the row under the cursor: edit it, as Enter does
        event.stop()
        self.on_element_grid_edit_requested(ElementGrid.EditRequested())

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
            self.query_one("#edit-message", Label).update(Text("enter edit · +/- nudge · g grad", style="dim"))

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


def _same_text(a: Text, b: Text) -> bool:
    """Shown the same: characters, spans, base style and justification."""
    return a.plain == b.plain and a.spans == b.spans and a.style == b.style and a.justify == b.justify


def _same_elements(new: "np.ndarray | None", old: "np.ndarray | None", rows: int) -> np.ndarray:
    """By element: True where `new` and `old` hold the very same number (nan, -0.0 included)."""
    if new is None or old is None:
        return np.full(rows, new is None and old is None)
    if new.shape != old.shape or new.dtype != old.dtype:
        return np.zeros(rows, dtype=bool)
    same = new == old
    if new.dtype.kind == "f":
        same = (same & (np.signbit(new) == np.signbit(old))) | (np.isnan(new) & np.isnan(old))
    return same


def _unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()
