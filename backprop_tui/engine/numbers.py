"""Reading a number the user typed, and writing numbers at fixed significant digits."""

from __future__ import annotations

import math
import re

from backprop_tui.engine.errors import EditError

FLOAT32_MAX = 3.4028234663852886e38
MAX_NUMBER_CHARS = 64

# Plain ASCII decimal notation only: "1", "-2.5", ".5", "3.", "1e-3". No hex, no "_",
# no other scripts' digits, so what is typed is what a reader of the screen sees.
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def parse_number(text: str, *, integer: bool = False) -> float:
    """The value of `text`, or EditError saying why it is refused."""
    if "\n" in text or "\r" in text:
        raise EditError("one number only, on one line")
    stripped = text.strip()
    if not stripped:
        raise EditError("enter a number")
    if len(stripped) > MAX_NUMBER_CHARS:
        raise EditError(f"too long: a number has at most {MAX_NUMBER_CHARS} characters")
    if stripped.lower().lstrip("+-") in ("nan", "inf", "infinity"):
        raise EditError(f"{stripped} is not allowed: values must be finite")
    if not _NUMBER.fullmatch(stripped):
        raise EditError(f"not a number: {stripped!r} (use digits 0-9, '.', '-', and e.g. 1e-3)")
    value = float(stripped)
    if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
        raise EditError(f"{stripped} is out of float32 range (about ±3.4e38)")
    if integer and value != int(value):
        raise EditError(f"{stripped} is not a whole number; this tensor holds class indices")
    return value


def fmt(value: float | None, digits: int = 6) -> str:
    """A number at fixed significant digits, the same everywhere on screen and in exports."""
    if value is None:
        return "none"
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    text = f"{value:.{digits}g}"
    return text


def short_number(value: float | int) -> str:
    """repr of a number, shortened when it is absurdly long (a 400-digit integer, say)."""
    text = repr(value)
    if len(text) <= 24:
        return text
    digits = sum(ch.isdigit() for ch in text)
    return f"{text[:12]}… ({digits} digits)"
