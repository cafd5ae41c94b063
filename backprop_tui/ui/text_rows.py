"""How many rows a line of Rich Text takes at a width, counted as Rich wraps it.

Shared by the TextBlock widget (its height) and the teaching sections (which sections
an edit leaves below the inspector's edge), so both count rows the same way.
"""

from __future__ import annotations

import io

from rich.console import Console
from rich.text import Text

# Text.wrap reads no more of a console than its settings; this one writes nowhere, so
# rows can be counted in a worker thread, away from the app's console.
_MEASURE = Console(file=io.StringIO(), width=80, color_system=None)


def fits(line: Text, width: int) -> bool:
    """One row at this width, unwrapped (a tab expands, so a line with one is wrapped)."""
    plain = line.plain
    return line.cell_len <= width and "\n" not in plain and "\t" not in plain


def wrap(line: Text, width: int, console: Console | None = None) -> list[Text]:
    """The rows of `line` at `width`, as a Static would draw them (Text.wrap)."""
    if fits(line, width):
        return [line]
    return list(line.wrap(console or _MEASURE, max(1, width)))


def wrapped_rows(line: Text, width: int) -> int:
    """How many rows `line` wraps to at `width`."""
    return 1 if fits(line, width) else len(wrap(line, width))
