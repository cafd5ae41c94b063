"""`TextBlock`: lines of Rich Text, wrapped to the widget's width, rendering only the
rows the screen asks for.

A Static renders all of its content whenever it changes. The inspector's teaching
sections change on every edit and are taller than the panel (simple_nn: 26 rows, of
which 5 show), so a Static spent most of its frame on rows nobody sees. A TextBlock
renders the rows the compositor asks for (only rows on screen), through the same Rich
path a Static takes for a Group of Texts, so the screen is the same; and it wraps each
line once per width, where the Static and its height check wrapped it twice or more.
An update that keeps the height repaints only the rows whose text changed: after an
edit most of the inspector's lines (headings, unchanged elements) are the same.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate

from rich.console import Group
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual.visual import RichVisual, Visual
from textual.widget import Widget

from backprop_tui.ui.text_rows import wrap


class TextBlock(Widget):
    """A block of text lines: `update(lines)` replaces them, `height_for(lines, width)`
    says how many rows they take."""

    DEFAULT_CSS = "TextBlock { height: auto; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._lines: list[Text] = []
        self._counts: dict[int, tuple[Text, int, int]] = {}  # id(line) -> (line, width, its number of rows)
        self._wraps: dict[int, tuple[Text, int, list[Text]]] = {}  # id(line) -> (line, width, its rows)
        self._width = -1  # the width _starts was measured at
        self._starts: list[int] = [0]  # the first row of each line, and the total
        self._strips: dict[int, Strip] = {}  # row -> rendered row, at _width

    @property
    def content(self) -> Group:
        """What a Static showing the same text would hold."""
        return Group(*self._lines)

    def update(self, lines: list[Text], layout: bool = True) -> None:
        """Show `lines`. Without a layout pass (the caller keeps the height), only the rows
        whose text changed are repainted: the others keep their rendered strips."""
        old_lines, old_starts, old_strips = self._lines, self._starts, self._strips
        old_width = self._width
        self._lines = list(lines)
        keep = {id(line) for line in self._lines}  # what was measured for these lines stays
        self._counts = {key: count for key, count in self._counts.items() if key in keep}
        self._wraps = {key: wrap for key, wrap in self._wraps.items() if key in keep}
        self._width = -1
        width = self.size.width
        if layout or old_width != width or width <= 0:
            self.refresh(layout=layout)
            return
        self._measure(width)
        if self._starts[-1] != old_starts[-1]:
            self.refresh()
            return
        changed = _changed_rows(old_lines, old_starts, self._lines, self._starts)
        self._strips = {y: strip for y, strip in old_strips.items() if y not in changed}
        if changed:
            self.refresh(*_row_regions(sorted(changed), width))

    def height_for(self, lines: list[Text], width: int) -> int:
        """Rows `lines` take at `width` (their counts are kept for an update with them)."""
        return sum(self._count(line, width) for line in lines)

    def get_content_height(self, container, viewport, width: int) -> int:
        self._measure(width)
        return self._starts[-1]

    def get_content_width(self, container, viewport) -> int:
        return max((line.cell_len for line in self._lines), default=0)

    def _count(self, line: Text, width: int) -> int:
        """How many rows `line` wraps to (kept for the line and width)."""
        cached = self._counts.get(id(line))
        if cached is not None and cached[0] is line and cached[1] == width:
            return cached[2]
        count = len(self._rows_of(line, width))
        self._counts[id(line)] = (line, width, count)
        return count

    def _rows_of(self, line: Text, width: int) -> list[Text]:
        cached = self._wraps.get(id(line))
        if cached is not None and cached[0] is line and cached[1] == width:
            return cached[2]
        rows = wrap(line, width, self.app.console)
        self._wraps[id(line)] = (line, width, rows)
        return rows

    def _measure(self, width: int) -> None:
        if width == self._width:
            return
        self._width = width
        heights = [self._count(line, width) for line in self._lines] if width > 0 else []
        self._starts = [0, *accumulate(heights)]
        self._strips = {}

    def _row(self, y: int) -> Text:
        index = bisect_right(self._starts, y) - 1
        row = self._rows_of(self._lines[index], self._width)[y - self._starts[index]]
        if row.no_wrap:
            return row
        row = row.copy()
        row.no_wrap = True  # wrapped already: Rich would only wrap it again to the same row
        return row

    def render_lines(self, crop: Region) -> list[Strip]:
        # the rows asked for and not rendered yet, each run of them rendered together: one
        # pass through Rich and Textual's styling costs about as much as one row does
        width = self.size.width
        self._measure(width)
        missing = [y for y in range(max(0, crop.y), min(crop.bottom, self._starts[-1])) if y not in self._strips]
        for first, last in _runs(missing):
            visual = RichVisual(self, Group(*(self._row(y) for y in range(first, last + 1))))
            strips = Visual.to_strips(self, visual, width, last - first + 1, self.visual_style)
            for y, strip in zip(range(first, last + 1), strips):
                self._strips[y] = strip
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        self._measure(self.size.width)
        strip = self._strips.get(y)
        return strip if strip is not None else Strip.blank(self.size.width, self.visual_style.rich_style)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips = {}

    def selection_updated(self, selection) -> None:
        self._strips = {}  # selected text is drawn in the row
        super().selection_updated(selection)


def _same_text(a: Text, b: Text) -> bool:
    """Drawn the same: characters, spans, and what else Text.render and wrap read."""
    return a is b or (
        a.plain == b.plain and a.spans == b.spans and a.style == b.style and a.justify == b.justify
        and a.overflow == b.overflow and a.no_wrap == b.no_wrap and a.end == b.end and a.tab_size == b.tab_size
    )


def _changed_rows(old_lines: list[Text], old_starts: list[int], lines: list[Text], starts: list[int]) -> set[int]:
    """The rows that show something else now: every row of a line that is not the same
    text, starting on the same row, as before."""
    was = {start: (line, end) for line, start, end in zip(old_lines, old_starts, old_starts[1:])}
    changed = set()
    for line, start, end in zip(lines, starts, starts[1:]):
        before = was.get(start)
        if before is None or before[1] != end or not _same_text(before[0], line):
            changed.update(range(start, end))
    return changed


def _runs(rows: list[int]) -> list[tuple[int, int]]:
    """(first, last) of each run of consecutive rows in the sorted `rows`."""
    runs: list[tuple[int, int]] = []
    for y in rows:
        if runs and runs[-1][1] == y - 1:
            runs[-1] = (runs[-1][0], y)
        else:
            runs.append((y, y))
    return runs


def _row_regions(rows: list[int], width: int) -> list[Region]:
    return [Region(0, first, width, last - first + 1) for first, last in _runs(rows)]
