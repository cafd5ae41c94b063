"""Reading a number the user typed, and writing numbers at fixed significant digits."""

from __future__ import annotations

import math
import re

from backprop_tui.engine.errors import EditError

FLOAT32_MAX = 3.4028234663852886e38
MAX_NUMBER_CHARS = 64
FLOAT32_UNDERFLOW = 2.0**-150  # float32 rounds any magnitude up to this to 0 (the smallest is 2**-149)


def underflows(value: float) -> bool:
    """Whether a non-zero number becomes 0 in float32 (1e-50, say)."""
    return value != 0 and abs(value) <= FLOAT32_UNDERFLOW

# Plain ASCII decimal notation only: "1", "-2.5", ".5", "3.", "1e-3". No hex, no "_",
# no other scripts' digits, so what is typed is what a reader of the screen sees.
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def looks_like_number(text: str) -> bool:
    """Whether `text` is written as one number (parse_number may still refuse its value):
    where a number and an expression are both accepted, this tells them apart."""
    stripped = text.strip()
    return bool(_NUMBER.fullmatch(stripped)) or stripped.lower().lstrip("+-") in ("nan", "inf", "infinity")


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
    if underflows(value):
        raise EditError(f"{stripped} is too small for float32 and would be stored as 0 (the smallest is about 1.4e-45)")
    if integer and value != int(value):
        raise EditError(f"{stripped} is not a whole number; this tensor holds class indices")
    return value


def fmt(value: float | None, digits: int = 6) -> str:
    """A number rounded to `digits` significant digits (never cut), the same everywhere on
    screen and in exports; engine/format.py fits it to a column."""
    if value is None:
        return "none"
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    text = f"{value:.{digits}g}"
    # fewer digits must not make a number look whole that is not: 0.999983 (a saturated
    # sigmoid) at 3 digits is 0.99998, not 1
    while digits < 6 and value != round(value) and float(text) == round(float(text)):
        digits += 1
        text = f"{value:.{digits}g}"
    return text


def short_number(value: float | int) -> str:
    """repr of a number, shortened when it is absurdly long (a 400-digit integer, say).
    Safe for any int: Python refuses to turn one of more than 4,300 digits into text."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value).bit_length() > 80:
        digits = int_digits(value)
        lead = abs(value) // 10 ** (digits - 12)
        return f"{'-' if value < 0 else ''}{lead}… ({digits} digits)"
    text = repr(value)
    if len(text) <= 24:
        return text
    digits = sum(ch.isdigit() for ch in text)
    return f"{text[:12]}… ({digits} digits)"


def int_digits(value: int) -> int:
    """How many decimal digits abs(value) has, without turning it into text."""
    n = abs(value)
    digits = max(1, int((n.bit_length() - 1) * 0.30102999566398120) + 1)
    while n >= 10**digits:
        digits += 1
    while digits > 1 and n < 10 ** (digits - 1):
        digits -= 1
    return digits


def count_text(n: int) -> str:
    """A count with thousands separators, or shortened past 15 digits."""
    return f"{n:,}" if abs(n) < 10**15 else short_number(n)


def shown(value: object, width: int = 60) -> str:
    """A value read from a file, as a message shows it: numbers shortened, long lists and
    strings cut, never more than about `width` characters."""
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, (int, float)):
        return short_number(value)
    if isinstance(value, list):
        parts: list[str] = []
        for item in value:
            parts.append(shown(item, width))
            if sum(len(p) + 2 for p in parts) > width:
                return "[" + ", ".join(parts) + ", …]" if len(parts) < len(value) else "[" + ", ".join(parts) + "]"
        return "[" + ", ".join(parts) + "]"
    if isinstance(value, dict):
        return "a table"
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"
