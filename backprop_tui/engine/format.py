"""Numbers and tensors as short text: shared by the CLI, the explorer and exports.

The rule for every number shown: whole (`fmt`, six significant digits), or rounded to
the significant digits that fit its room (`fit_number`), never cut. Where even the
fewest digits do not fit, the text is wider than the room and the column must grow.
A difference of two float32 numbers is shown to the digits float32 resolves
(`difference`): a +0.1 nudge reads 0.1, not 0.0999999.
"""

from __future__ import annotations

import math

import numpy as np

from backprop_tui.engine.numbers import fmt

MIN_DIGITS = 2  # fewer significant digits than this are not worth reading
_EPSILON = {np.dtype(np.float16): 2.0**-10, np.dtype(np.float32): 2.0**-23}


def fit_number(value: float, width: int, digits: int = 6, signed: bool = False) -> str:
    """`value` rounded to the most significant digits (at most `digits`) whose text is at
    most `width` characters, positional or scientific; `+` before a positive number when
    `signed`. When no form fits, the shortest at MIN_DIGITS (wider than `width`)."""
    best = ""
    for d in range(digits, MIN_DIGITS - 1, -1):
        for text in (fmt(value, d), _scientific(value, d)):
            if signed and text[0] not in "-n" and text != "0":
                text = "+" + text
            if len(text) <= width:
                return text
            if not best or len(text) < len(best):
                best = text
    return best


def shortest(value: float, digits: int) -> str:
    """`value` at `digits` significant digits, positional or scientific, whichever is shorter."""
    text = fmt(value, digits)
    scientific = _scientific(value, digits)
    return scientific if len(scientific) < len(text) else text


def _scientific(value: float, digits: int) -> str:
    """`-3.78e-4`: scientific form at `digits` significant digits, no trailing zeros, the
    exponent unpadded."""
    if value == 0 or not math.isfinite(value):
        return fmt(value)
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def difference(new, old) -> float:
    """`new - old`, rounded to the significant digits the operands' precision resolves
    (float32 numbers carry about 7): 2.1 - 2.0 in float32 is 0.0999999046, shown as 0.1."""
    delta = float(new) - float(old)
    if delta == 0 or not math.isfinite(delta):
        return delta
    epsilon = max(_EPSILON.get(np.asarray(x).dtype, 2.0**-52) for x in (new, old))
    resolution = max(abs(float(new)), abs(float(old))) * epsilon
    digits = math.floor(math.log10(abs(delta))) - math.floor(math.log10(resolution))
    return float(f"{delta:.{max(1, min(digits, 17))}g}")


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
