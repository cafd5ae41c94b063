"""Tensors as short text: shared by the CLI, the explorer and exports."""

from __future__ import annotations

import numpy as np

from backprop_tui.engine.numbers import fmt


def format_array(array: np.ndarray | None, digits: int = 6, max_items: int = 6) -> str:
    """A scalar as a number, a tensor as a compact nested list (elided past max_items per row)."""
    if array is None:
        return "none"
    if array.ndim == 0 or array.size == 1 and array.ndim <= 1:
        return fmt(float(array.reshape(-1)[0]), digits)
    return _nested(array, digits, max_items)


def _nested(array: np.ndarray, digits: int, max_items: int) -> str:
    if array.ndim == 1:
        items = [fmt(float(x), digits) for x in array[:max_items]]
        if array.shape[0] > max_items:
            items.append("…")
        return "[" + ", ".join(items) + "]"
    rows = [_nested(row, digits, max_items) for row in array[:max_items]]
    if array.shape[0] > max_items:
        rows.append("…")
    return "[" + ", ".join(rows) + "]"


def format_shape(shape: tuple[int, ...]) -> str:
    return "scalar" if not shape else "×".join(map(str, shape))
