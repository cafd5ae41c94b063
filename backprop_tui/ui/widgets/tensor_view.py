"""A whole tensor as an aligned matrix, on Textual's line API: every element can be reached.

The tensor is drawn as rows of its last dimension (a scalar is one row of one; a 3-D or
4-D tensor's rows are labelled with their leading indices, `[1,0,:]`), under a line of
column indices that stays in view. A row is formatted only when drawn, and only its columns in view, so a
million-element weight opens at once and scrolls both ways; the row labels stay at the
left edge when the numbers scroll sideways. Every number has the same column width: the
project's number rule (fmt, 6 significant digits) is never wider than COLUMN - 1 cells,
and an int tensor's column is as wide as its widest number, so nothing is ever cut.
"""

from __future__ import annotations

import math

import numpy as np
from rich.text import Text
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from backprop_tui.ui.format import fmt, sign_style, signed

COLUMN = 13  # `-1.23457e-05` is 12 cells: the widest a 6-digit number gets, and a space


def row_label(index: tuple[int, ...]) -> str:
    """`[1,0,:]`: the leading indices of one row of the last dimension (`[:]` for a vector)."""
    return "[" + "".join(f"{i}," for i in index) + ":]"


class TensorView(ScrollView, can_focus=True):
    """One tensor (a value or a grad), every element in an aligned column."""

    BINDINGS = [
        Binding("up", "scroll_up", "Up", show=False),
        Binding("down", "scroll_down", "Down", show=False),
        Binding("left", "columns(-1)", "Left", show=False),
        Binding("right", "columns(1)", "Right", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "corner(0)", "First element", show=False),
        Binding("end", "corner(1)", "Last element", show=False),
    ]

    DEFAULT_CSS = """
    TensorView { height: 1fr; }
    """

    def __init__(self, array: np.ndarray, grad: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lines: LRUCache[tuple, Strip] = LRUCache(1024)
        self.show(array, grad)

    def show(self, array: np.ndarray, grad: bool) -> None:
        """Draw `array` (a grad's signs spelled out and coloured)."""
        self.array, self.grad = array, grad
        self.table = array.reshape(1, 1) if array.ndim == 0 else array.reshape(-1, array.shape[-1])
        self.lead = array.shape[:-1] if array.ndim else ()
        self.label_width = len(self.label(self.table.shape[0] - 1)) + 1
        self.column = COLUMN
        if array.dtype.kind in "iub" and array.size:
            self.column = max(len(str(int(array.min()))), len(str(int(array.max()))), len(str(array.shape[-1]))) + 1
        self.lines.clear()
        self.virtual_size = Size(self.label_width + self.column * self.table.shape[1], self.table.shape[0] + 1)
        self.refresh()

    def label(self, row: int) -> str:
        """The label of table row `row`: its leading indices."""
        if not self.lead:
            return "" if self.array.ndim == 0 else row_label(())
        return row_label(tuple(int(i) for i in np.unravel_index(row, self.lead)))

    def number(self, x) -> Text:
        if self.array.dtype.kind in "iub":
            return Text(str(int(x)))
        return Text(signed(float(x)), style=sign_style(float(x))) if self.grad else Text(fmt(float(x)))

    def action_corner(self, last: int) -> None:
        """To the first element (top left) or the last (bottom right)."""
        self.scroll_to(x=self.max_scroll_x if last else 0, y=self.max_scroll_y if last else 0, animate=False)

    def action_columns(self, count: int) -> None:
        """Scroll sideways by whole columns."""
        column = math.ceil(self.scroll_offset.x / self.column) + count
        self.scroll_to(x=max(0, column) * self.column, animate=False)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        row = -1 if y == 0 else y - 1 + scroll_y  # the first line names the columns, whatever the scroll
        if row >= self.table.shape[0]:
            return Strip.blank(width, self.rich_style)
        room = max(0, width - self.label_width)
        # whole columns only (a number half out of view would read as another number), and
        # only those in view are formatted: a row of a wide weight holds hundreds
        first = min(math.ceil(scroll_x / self.column), self.table.shape[1])
        last = min(self.table.shape[1], first + max(1, room // self.column))
        key = (row, first, last, self.app.theme)
        numbers = self.lines.get(key)
        if numbers is None:
            numbers = self.lines[key] = self.draw(row, first, last)
        numbers = numbers.crop_extend(0, room, self.rich_style)
        label = Text("" if row < 0 else self.label(row), style="dim", no_wrap=True, end="")
        label.pad_right(self.label_width - label.cell_len)
        label.stylize_before(self.rich_style)
        head = Strip(label.render(self.app.console), self.label_width).crop(0, min(width, self.label_width))
        return Strip.join([head, numbers]).crop_extend(0, width, self.rich_style)

    def draw(self, row: int, first: int, last: int) -> Strip:
        """Columns first..last of one table row (the column indices for row -1)."""
        line = Text(no_wrap=True, end="")
        for col in range(first, last):
            cell = Text(str(col), style="dim") if row < 0 else self.number(self.table[row, col])
            line.append(" " * (self.column - 1 - cell.cell_len))
            line.append_text(cell)
            line.append(" ")
        line.stylize_before(self.rich_style)
        return Strip(line.render(self.app.console), line.cell_len)
