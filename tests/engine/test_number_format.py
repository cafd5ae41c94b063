"""The rule for every number shown: whole or rounded to the digits that fit, never cut."""

from __future__ import annotations

import numpy as np
import pytest

from backprop_tui.engine.format import MIN_DIGITS, difference, fit_number, shortest
from backprop_tui.engine.numbers import fmt


@pytest.mark.parametrize("value", [-0.000378189, -0.00268855, 123456.75, 0.999983, 7.45058e-09, -3.25e7, 2.5])
@pytest.mark.parametrize("width", range(3, 14))
def test_a_fitted_number_is_the_value_rounded_never_cut(value, width):
    text = fit_number(value, width)
    mantissa, _, exponent = text.partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    unit = 10.0 ** (int(exponent or 0) - decimals)
    assert abs(float(text) - value) <= unit / 2 * (1 + 1e-9)
    if len(text) > width:  # nothing fits: the shortest at the fewest digits, and the column grows
        assert len(text) <= len(fmt(value, MIN_DIGITS))
    assert len(text) <= max(width, len(fmt(value, MIN_DIGITS)))


def test_fitting_keeps_every_digit_that_fits():
    assert fit_number(-0.000378189, 12) == "-0.000378189"
    assert fit_number(-0.00268855, 11) == "-0.00268855"
    assert fit_number(-0.00268855, 10) == "-0.0026886"  # rounded, not -0.0026885
    assert fit_number(-0.000378189, 9) == "-3.782e-4"  # scientific keeps more digits here
    assert fit_number(-3.25e7, 8) == "-3.25e7"
    assert shortest(-0.000137254, 4) == "-1.373e-4" and shortest(0.01576, 4) == "0.01576"
    assert fit_number(0.5, 4, signed=True) == "+0.5"


def test_fewer_digits_never_make_a_number_look_whole():
    assert fmt(0.999983, 3) == "0.99998"  # a saturated sigmoid is not 1
    assert fmt(2.0, 3) == "2" and fmt(2.5, 3) == "2.5"


def test_a_difference_of_float32_numbers_has_no_rounding_noise():
    f = np.float32
    assert difference(f(2.1), f(2.0)) == 0.1  # 0.0999999046 in float32
    assert difference(f(0.6), f(0.5)) == 0.1
    assert difference(f(-0.00172765), f(-0.00268855)) == pytest.approx(0.0009609, rel=1e-6)
    assert difference(3.0, 1.0) == 2.0 and difference(f(1.0), f(1.0)) == 0.0


def test_looks_like_number_tells_a_number_from_an_expression():
    from backprop_tui.engine.numbers import looks_like_number

    for text in ("39", " -1.5e-3 ", ".5", "3.", "+2", "inf", "-Infinity", "nan", "1e999"):
        assert looks_like_number(text), text
    for text in ("dh * 2", "x", "2 * x", "(1)", "٣", "1_000", "0x10", ""):  # ASCII digits only, as parse_number
        assert not looks_like_number(text), text
