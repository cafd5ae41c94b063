"""How many rows a line of Rich Text takes at a width, counted as Rich wraps it.

Shared by the TextBlock widget (its height) and the teaching sections (which sections
an edit leaves below the inspector's edge), so both count rows the same way.
"""

from __future__ import annotations

from rich._wrap import divide_line
from rich.text import Text


def fits(line: Text, width: int) -> bool:
    """One row at this width, unwrapped (a tab expands, so a line with one is wrapped)."""
    plain = line.plain
    return line.cell_len <= width and "\n" not in plain and "\t" not in plain


def wrapped_rows(line: Text, width: int) -> int | None:
    """How many rows `line` wraps to at `width`, by Rich's own line breaking (divide_line)
    without building them; None for a line only Rich's wrap can tell (a tab, a newline,
    no_wrap), which takes at least one row."""
    if fits(line, width):
        return 1
    plain = line.plain
    if "\n" in plain or "\t" in plain or line.no_wrap or width < 1:
        return None
    return len(divide_line(plain, width, fold=(line.overflow or "fold") == "fold")) + 1
