"""Numbers, tensors and deltas as Rich Text, the same in every panel.

Signs are shown twice: by colour, and by an explicit `+`/`-` that survives a terminal
without colour. Every number goes through the engine's `fmt` (fixed significant digits),
so snapshots are deterministic and the screen agrees with the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import numpy as np
from rich.text import Text

if TYPE_CHECKING:
    from backprop_tui.engine.snapshot import Node

POSITIVE = "green"
NEGATIVE = "red"
ZERO = "dim"
NO_GRAD = "dim italic"
CHANGED = "bold reverse"
DELTA = "bold yellow"
CURSOR = "bold underline"  # the weight grid's cursor, echoed in the inspector
PREVIEW_DIGITS = 3  # compact previews in tree labels; full precision elsewhere
PREVIEW_ELEMENTS = 3
FLAG_MARK = "⚠"  # the engine flagged this node (analysis.flags); the inspector says why


def fmt(value: float | None, digits: int = 6) -> str:
    # Imported here: importing the engine package imports torch, which the first
    # screen must not wait for.
    from backprop_tui.engine.numbers import fmt as engine_fmt

    return engine_fmt(None if value is None else float(value), digits)


def signed(value: float, digits: int = 6) -> str:
    """`+39`, `-13`, `0`: a sign that reads without colour."""
    text = fmt(value, digits)
    return text if text.startswith("-") or text in ("0", "nan") else "+" + text


def sign_style(value: float) -> str:
    if value > 0:
        return POSITIVE
    if value < 0:
        return NEGATIVE
    return ZERO


def grad_number(value: float, digits: int = 6) -> Text:
    return Text(signed(value, digits), style=sign_style(value))


def value_number(value: float, digits: int = 6) -> Text:
    return Text(fmt(value, digits))


def delta_text(delta: float, digits: int = 6) -> Text:
    """` Δ+2`: how much the last edit moved a number."""
    return Text(f" Δ{signed(delta, digits)}", style=DELTA)


def shape_text(shape: tuple[int, ...]) -> str:
    return "scalar" if not shape else "×".join(map(str, shape))


def index_text(index: tuple[int, ...]) -> str:
    return "()" if not index else "[" + ",".join(map(str, index)) + "]"


def changed(new: np.ndarray | None, old: np.ndarray | None) -> np.ndarray | None:
    """Boolean mask of elements that differ, or None when there is nothing to compare."""
    if new is None or old is None or new.shape != old.shape:
        return None
    mask = np.not_equal(new, old, out=np.empty(new.shape, dtype=bool))  # an array, even of shape ()
    if new.dtype.kind == "f" and mask.any():
        # nan != nan, but a value that stays nan has not changed; only the few elements
        # that differ are looked at again (a million-element weight changes in one place)
        mask[mask] = ~(np.isnan(new[mask]) & np.isnan(old[mask]))
    return mask


def changed_words(count: int, size: int) -> str:
    """` (2 of 6 changed)`: how many elements of a tensor the last edit changed."""
    return f" ({count} of {size} changed)"


def scalar_delta(new: np.ndarray | None, old: np.ndarray | None) -> float | None:
    """The change of a one-element array, to the digits its precision resolves (a +0.1
    nudge is 0.1, not 0.0999999), or None when it did not change (or is not comparable)."""
    mask = changed(new, old)
    if mask is None or not mask.any():
        return None
    from backprop_tui.engine.format import difference  # imports torch: not at the first paint

    return difference(new.reshape(-1)[0], old.reshape(-1)[0])


def preview(
    array: np.ndarray, grad: bool = False, mask: np.ndarray | None = None, elements: int = PREVIEW_ELEMENTS
) -> Text:
    """`[2×3] 3 11 3 …`: the shape and the first few elements (changed ones reversed)."""
    flat = array.reshape(-1)
    flat_mask = None if mask is None else mask.reshape(-1)
    text = Text(f"[{shape_text(array.shape)}]", style="dim")
    for i, x in enumerate(flat[:elements]):
        text.append(" ")
        cell = grad_number(x, PREVIEW_DIGITS) if grad else value_number(x, PREVIEW_DIGITS)
        if flat_mask is not None and flat_mask[i]:
            cell.stylize(CHANGED)
        text.append_text(cell)
    if flat.size > elements:
        text.append(" …", style="dim")
    return text


def value_of(node: "Node", previous: "Node | None", elements: int = PREVIEW_ELEMENTS) -> Text:
    """A node's value: inline for a scalar, a preview for a tensor; with its delta."""
    old = None if previous is None else previous.value
    if node.is_scalar and not node.shape:
        text = value_number(node.scalar())
        delta = scalar_delta(node.value, old)
        if delta is not None:
            text.stylize(CHANGED)
            text.append_text(delta_text(delta))
        return text
    mask = changed(node.value, old)
    text = preview(node.value, mask=mask, elements=elements)
    if mask is not None and mask.any():
        text.append(changed_words(int(mask.sum()), mask.size), style=DELTA)
    return text


def grad_of(node: "Node", previous: "Node | None", elements: int = PREVIEW_ELEMENTS) -> Text:
    """A node's gradient, `no grad` where autograd computed none (never shown as 0)."""
    if node.grad is None:
        return Text("no grad", style=NO_GRAD)
    old = None if previous is None else previous.grad
    if not node.shape:
        text = grad_number(node.scalar_grad())
        delta = scalar_delta(node.grad, old)
        if delta is not None:
            text.stylize("bold")
            text.append_text(delta_text(delta))
        return text
    mask = changed(node.grad, old)
    text = preview(node.grad, grad=True, mask=mask, elements=elements)
    if mask is not None and mask.any():
        text.append(changed_words(int(mask.sum()), mask.size), style=DELTA)
    return text


def matrix(
    array: np.ndarray,
    width: int,
    grad: bool = False,
    mask: np.ndarray | None = None,
    max_rows: int = 12,
    max_cols: int = 8,
    cursor: tuple[int, ...] | None = None,
) -> list[Text]:
    """Rows of right-aligned numbers, `width` characters each, so two matrices line up.

    Tensors of more than two dimensions are shown as 2-D slices; large ones are cut
    with `…` (the weight editor pages through every element).
    """
    if array.ndim <= 1:
        rows2d = array.reshape(1, -1)
        masks2d = None if mask is None else mask.reshape(1, -1)
        at = None if not cursor else (0, cursor[0])
        return _matrix2d(rows2d, masks2d, width, grad, max_rows, max_cols, at)
    if array.ndim == 2:
        return _matrix2d(array, mask, width, grad, max_rows, max_cols, cursor)
    lines: list[Text] = []
    lead_shape = array.shape[:-2]
    for lead in np.ndindex(*lead_shape):
        if len(lines) >= max_rows:
            lines.append(Text("…", style="dim"))
            break
        lines.append(Text(f"[{','.join(map(str, lead))},:,:]", style="dim"))
        sub_mask = None if mask is None else mask[lead]
        at = cursor[-2:] if cursor and tuple(cursor[:-2]) == lead else None
        lines.extend(_matrix2d(array[lead], sub_mask, width, grad, max_rows, max_cols, at))
    return lines


def matrix_width(arrays: Iterable[np.ndarray | None], grad_flags: Iterable[bool],
                 max_rows: int = 12, max_cols: int = 8) -> int:
    """The column width that fits every element `matrix` can show of every array (the
    top-left `max_rows` x `max_cols` of each 2-D slice), so that they line up."""
    width = 1
    for array, grad in zip(arrays, grad_flags):
        if array is None:
            continue
        shown = array.reshape(1, -1) if array.ndim <= 1 else array
        shown = shown[..., :max_rows, :max_cols]
        for x in shown.reshape(-1)[:4096]:
            width = max(width, len(signed(x) if grad else fmt(x)))
    return width


def _matrix2d(
    array: np.ndarray,
    mask: np.ndarray | None,
    width: int,
    grad: bool,
    max_rows: int,
    max_cols: int,
    cursor: tuple[int, ...] | None = None,
) -> list[Text]:
    lines = []
    rows, cols = array.shape
    for r in range(min(rows, max_rows)):
        line = Text("[", style="dim", no_wrap=True, overflow="ellipsis")
        for c in range(min(cols, max_cols)):
            x = array[r, c]
            cell = grad_number(x) if grad else value_number(x)
            if mask is not None and mask[r, c]:
                cell.stylize(CHANGED)
            if cursor is not None and tuple(cursor) == (r, c):
                cell.stylize(CURSOR)
            cell.pad_left(width - len(cell))  # after styling: the padding stays plain
            line.append(" ")
            line.append_text(cell)
        if cols > max_cols:
            line.append(f" … +{cols - max_cols}", style="dim")
        line.append(" ]", style="dim")
        lines.append(line)
    if rows > max_rows:
        lines.append(Text(f"  … {rows - max_rows} more rows", style="dim"))
    return lines
