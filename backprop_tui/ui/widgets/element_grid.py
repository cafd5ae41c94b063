"""`ElementGrid`: a page of a leaf's elements (index, value, grad), drawn on Textual's line API.

The grid holds numbers, not text: `show(page)` compares the page with the one shown and
repaints only the rows whose numbers changed (`refresh_lines`); a row is formatted when
its numbers change and drawn when it scrolls into view (`render_line`, with an LRU cache
of drawn rows). Every number is whole or rounded to the digits that fit (engine/format.py):
the columns grow to the widest cell of the page, and where the grid is too narrow for
that the whole page drops to fewer digits, then drops the Δ markers, and only then
scrolls sideways. Nothing is cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from backprop_tui.ui.format import CHANGED, DELTA, NO_GRAD, sign_style

HEADERS = ("index", "value", "grad")
PADDING = 1  # blank cells either side of a column's text
FULL_DIGITS = 6
# what the page is drawn with, from the most to the least: (significant digits, Δ markers)
BUDGETS = [(d, True) for d in range(FULL_DIGITS, 2, -1)] + [(d, False) for d in range(FULL_DIGITS, 1, -1)]


@dataclass(frozen=True, eq=False)
class GridPage:
    """One page of a leaf: each element's index label, value and grad, and both before
    the last edit (None where there is nothing to compare with)."""

    labels: tuple[str, ...]
    value: np.ndarray
    grad: np.ndarray | None = None
    value_before: np.ndarray | None = None
    grad_before: np.ndarray | None = None


@dataclass(frozen=True)
class Cells:
    """One row's text at a budget: the value and its Δ, the grad and its Δ."""

    value: str
    value_delta: str
    value_changed: bool
    grad: str
    grad_delta: str
    grad_changed: bool
    grad_style: str

    def widths(self) -> tuple[int, int]:
        return len(_joined(self.value, self.value_delta)), len(_joined(self.grad, self.grad_delta))


def row_cells(page: GridPage, row: int, digits: int, deltas: bool) -> Cells:
    """The text of `row` at `digits` significant digits, with or without its Δ markers."""
    from backprop_tui.engine.format import difference, shortest

    def signed(x: float) -> str:
        text = shortest(x, digits)
        return text if text.startswith("-") or text in ("0", "nan") else "+" + text

    x = page.value[row]
    value_delta, value_changed = "", False
    if page.value_before is not None and _differs(x, page.value_before[row]):
        value_changed = True
        if deltas:
            value_delta = "Δ" + signed(difference(x, page.value_before[row]))
    if page.grad is None:
        return Cells(shortest(x, digits), value_delta, value_changed, "no grad", "", False, NO_GRAD)
    g = page.grad[row]
    grad_delta, grad_changed = "", False
    if page.grad_before is not None and _differs(g, page.grad_before[row]):
        grad_changed = True
        if deltas:
            grad_delta = "Δ" + signed(difference(g, page.grad_before[row]))
    elif page.grad_before is None and page.value_before is not None:
        grad_changed = True  # the grad appeared (requires_grad turned on)
    style = sign_style(g) + (" bold" if grad_changed else "")
    return Cells(shortest(x, digits), value_delta, value_changed, signed(g), grad_delta, grad_changed, style)


class RowCursorView(ScrollView, can_focus=True):
    """The keys that move a row cursor, as in Textual's DataTable (not listed in the help)."""

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "cursor_page(-1)", "Page up", show=False),
        Binding("pagedown", "cursor_page(1)", "Page down", show=False),
        Binding("home", "cursor_to(0)", "First", show=False),
        Binding("end", "cursor_to(-1)", "Last", show=False),
    ]


class ElementGrid(RowCursorView):
    """Rows of index, value and grad under a header row that stays put; a row cursor."""

    COMPONENT_CLASSES = {"element-grid--header", "element-grid--cursor"}
    DEFAULT_CSS = """
    ElementGrid {
        background: $surface;
        color: $foreground;
        &:focus {
            background-tint: $foreground 5%;
            & > .element-grid--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
        & > .element-grid--header { text-style: bold; background: $panel; color: $foreground; }
        & > .element-grid--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """
    BINDINGS = [
        Binding("enter", "edit", "Edit", id="weights.edit",
                tooltip="Type a new value for the element under the cursor."),
    ]

    class EditRequested(Message):
        """Enter, or a click on the row under the cursor."""

    @dataclass
    class CursorMoved(Message):
        row: int

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.page: GridPage | None = None
        self.cursor_row = 0
        self.budget = BUDGETS[0]
        self.cells: list[Cells] = []
        self._versions: list[int] = []  # by row: bumped when its text changes
        self._stale: set[int] = set()  # rows off screen whose numbers changed: formatted when in view
        self._value_widths = np.zeros(0, dtype=int)
        self._grad_widths = np.zeros(0, dtype=int)
        self._columns = (0, 0, 0)  # each column's text width
        self._strips: LRUCache[tuple, Strip] = LRUCache(1024)

    # ------------------------------------------------------------ data

    @property
    def row_count(self) -> int:
        return len(self.cells)

    def show(self, page: GridPage, reset: bool = False) -> None:
        """Show `page`. `reset` (another leaf or page): the cursor and scroll go to the top;
        otherwise only the rows whose numbers changed are formatted and repainted."""
        old = self.page
        self.page = page
        rows = len(page.labels)
        if reset or old is None or old.labels is not page.labels:
            self.budget = BUDGETS[0]
            self._format(range(rows), fresh=True)
            self.cursor_row = 0 if reset else min(self.cursor_row, max(0, rows - 1))
            if reset:
                self.scroll_to(0, 0, animate=False)
            self._fit(keep=False)
            self._redraw()
            return
        same = np.ones(rows, dtype=bool)
        for new, was in ((page.value, old.value), (page.grad, old.grad),
                         (page.value_before, old.value_before), (page.grad_before, old.grad_before)):
            same &= _same(new, was)
        changed = [int(i) for i in np.flatnonzero(~same)]
        # A page holds 500 rows and a panel shows a dozen: the rows off screen are
        # formatted (and the columns fitted to them) when they scroll into view.
        in_view = self._rows_in_view()
        shown = [row for row in changed if row in in_view]
        self._stale.update(row for row in changed if row not in in_view)
        self._format(shown)
        if self._fit(keep=True):
            for first, last in _runs(shown):
                self.refresh_lines(first + 1, last - first + 1)  # virtual lines: the header is line 0
        else:
            self._redraw()

    def _rows_in_view(self) -> range:
        top = round(self.scroll_y)
        return range(top, min(len(self.cells), top + max(1, self.scrollable_content_region.height)))

    def _format(self, rows, fresh: bool = False) -> None:
        page, (digits, deltas) = self.page, self.budget
        if fresh:
            self._stale.clear()
            self.cells = [row_cells(page, i, digits, deltas) for i in rows]
            self._versions = [0] * len(self.cells)
            widths = np.array([c.widths() for c in self.cells], dtype=int).reshape(-1, 2)
            self._value_widths, self._grad_widths = widths[:, 0].copy(), widths[:, 1].copy()
            return
        for i in rows:
            self._stale.discard(i)
            cells = row_cells(page, i, digits, deltas)
            self.cells[i] = cells
            self._versions[i] += 1
            self._value_widths[i], self._grad_widths[i] = cells.widths()

    def _column_widths(self) -> tuple[int, int, int]:
        labels = self.page.labels if self.page is not None else ()
        index = max([len(HEADERS[0]), *map(len, labels[:1]), *map(len, labels[-1:])])
        value = max(len(HEADERS[1]), int(self._value_widths.max(initial=0)))
        grad = max(len(HEADERS[2]), int(self._grad_widths.max(initial=0)))
        return index, value, grad

    def _room(self) -> int:
        """The columns' room: the content width less the vertical scrollbar that the rows
        will need (it may not be there yet), so that no horizontal one appears for it."""
        width = self.content_region.width
        if len(self.cells) + 1 > self.content_region.height:
            width -= self.styles.scrollbar_size_vertical
        return width

    def _fit(self, keep: bool) -> bool:
        """Settle the budget and the column widths: the most digits whose columns fit the
        room. `keep`: the same page was edited, and its columns do not narrow (no jitter).
        True when the budget and the columns are as they were."""
        before = (self.budget, self._columns)
        room = self._room()
        columns = self._column_widths()
        if keep:
            columns = tuple(max(new, old) for new, old in zip(columns, self._columns))
        if room > 0 and _total(columns) > room:
            for budget in BUDGETS[BUDGETS.index(self.budget) + 1:]:
                self.budget = budget
                self._format(range(len(self.cells)), fresh=True)
                columns = self._column_widths()
                if _total(columns) <= room:
                    break
        self._columns = columns
        return (self.budget, self._columns) == before

    def _redraw(self) -> None:
        self._strips.clear()
        self.virtual_size = Size(_total(self._columns), len(self.cells) + 1)
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        if self.page is not None:  # room for more digits, perhaps
            self.budget = BUDGETS[0]
            self._format(range(len(self.cells)), fresh=True)
            self._fit(keep=False)
            self._redraw()

    # ------------------------------------------------------------ drawing

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        due = [row for row in self._rows_in_view() if row in self._stale]
        if due:
            self._format(due)
            if not self._fit(keep=True):
                self._redraw()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        scroll_x, scroll_y = self.scroll_offset
        row = None if y == 0 else y - 1 + scroll_y
        if row is not None and row >= len(self.cells):
            return Strip.blank(width, self.visual_style.rich_style)
        cursor = row == self.cursor_row
        if row in self._stale:  # in view before watch_scroll_y saw it
            self._format([row])
        key = (row, None if row is None else self._versions[row], cursor, self.has_focus, self._columns)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._header_strip() if row is None else self._row_strip(row, cursor)
            self._strips[key] = strip
        fill = self.visual_style.rich_style  # the cursor's row is highlighted across the whole width
        if cursor:
            fill = fill + self.get_component_rich_style("element-grid--cursor")
        return strip.crop_extend(scroll_x, scroll_x + width, fill)

    def _header_strip(self) -> Strip:
        style = self.visual_style.rich_style + self.get_component_rich_style("element-grid--header")
        index, value, grad = self._columns
        text = _pad(HEADERS[0].ljust(index)) + _pad(HEADERS[1].ljust(value)) + _pad(HEADERS[2].ljust(grad))
        return Strip([Segment(text, style)])

    def _row_strip(self, row: int, cursor: bool) -> Strip:
        base = self.visual_style.rich_style
        over = self.get_component_rich_style("element-grid--cursor") if cursor else Style()
        index, value_width, grad_width = self._columns
        c = self.cells[row]
        meta = Style.from_meta({"row": row})
        parts: list[tuple[str, Style | str | None]] = [
            (_pad(self.page.labels[row].ljust(index)), "dim"),
            # at least the padding, even if a row formatted late is wider than its column
            (" " * max(PADDING, PADDING + value_width - len(_joined(c.value, c.value_delta))), None),
            (c.value, CHANGED if c.value_changed else None),
        ]
        if c.value_delta:
            parts.append((" " + c.value_delta, DELTA))
        parts.append((" " * max(2 * PADDING, 2 * PADDING + grad_width - len(_joined(c.grad, c.grad_delta))), None))
        parts.append((c.grad, c.grad_style))
        if c.grad_delta:
            parts.append((" " + c.grad_delta, DELTA))
        parts.append((" " * PADDING, None))
        segments = []
        for text, style in parts:
            own = Style.parse(style) if isinstance(style, str) else (style or Style())
            segments.append(Segment(text, base + own + over + meta))
        return Strip(segments)

    # ------------------------------------------------------------ cursor

    def move_cursor(self, row: int) -> None:
        if not self.cells:
            return
        row = max(0, min(row, len(self.cells) - 1))
        old, self.cursor_row = self.cursor_row, row
        if old != row:
            self.refresh_lines(old + 1)
            self.refresh_lines(row + 1)
            self.post_message(self.CursorMoved(row))
        self._scroll_to_cursor()

    def _scroll_to_cursor(self) -> None:
        rows_shown = max(1, self.scrollable_content_region.height - 1)  # less the header
        top = round(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= top + rows_shown:
            self.scroll_to(y=self.cursor_row - rows_shown + 1, animate=False)

    def action_cursor(self, step: int) -> None:
        self.move_cursor(self.cursor_row + step)

    def action_cursor_page(self, direction: int) -> None:
        self.move_cursor(self.cursor_row + direction * max(1, self.scrollable_content_region.height - 1))

    def action_cursor_to(self, row: int) -> None:
        self.move_cursor(row if row >= 0 else len(self.cells) - 1)

    def action_edit(self) -> None:
        self.post_message(self.EditRequested())

    def on_click(self, event: events.Click) -> None:
        row = event.style.meta.get("row")
        if row is None:
            return
        if row == self.cursor_row:
            self.post_message(self.EditRequested())
        else:
            self.move_cursor(row)

    # ------------------------------------------------------------ reading back

    def row_text(self, row: int) -> str:
        """Row `row` as drawn (whole, not cropped to the scroll), for tests and screen readers."""
        if row in self._stale:
            self._format([row])
        return self._row_strip(row, row == self.cursor_row).text


def _runs(rows: list[int]) -> list[tuple[int, int]]:
    """(first, last) of each run of consecutive rows in the sorted `rows`."""
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and runs[-1][1] == row - 1:
            runs[-1] = (runs[-1][0], row)
        else:
            runs.append((row, row))
    return runs


def _pad(text: str) -> str:
    return " " * PADDING + text + " " * PADDING


def _total(columns: tuple[int, ...]) -> int:
    return sum(width + 2 * PADDING for width in columns)


def _joined(number: str, delta: str) -> str:
    return f"{number} {delta}" if delta else number


def _differs(new, old) -> bool:
    return not (new == old or (new != new and old != old))


def _same(new: np.ndarray | None, old: np.ndarray | None) -> np.ndarray | bool:
    """By element: True where `new` and `old` hold the very same number (nan, -0.0 included)."""
    if new is None or old is None:
        return new is None and old is None
    if new is old:
        return True
    if new.shape != old.shape or new.dtype != old.dtype:
        return False
    same = new == old
    if new.dtype.kind == "f":
        same = (same & (np.signbit(new) == np.signbit(old))) | (np.isnan(new) & np.isnan(old))
    return same
