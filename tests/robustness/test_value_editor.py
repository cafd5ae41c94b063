"""What the value editor may receive, through numbers.parse_number and then the Session.

Each text is accepted with a stated meaning or refused with a stated message; a refused
text leaves every value, the undo history and the snapshot as they were.
"""

from __future__ import annotations

import pytest

from backprop_tui.engine import EditError, Session
from backprop_tui.engine.numbers import parse_number
from robustness_support import bundled, state_of, unchanged

LONG = "1" * 10_000
PASTED = "w = 2.5\nb = -1.0\nthe values from my notes\n"

# text -> ("accept", value it means) or ("refuse", part of the message)
TABLE: dict[str, tuple[str, float | str]] = {
    "": ("refuse", "enter a number"),
    " ": ("refuse", "enter a number"),
    "abc": ("refuse", "not a number: 'abc' (use digits 0-9, '.', '-', and e.g. 1e-3)"),
    "1e": ("refuse", "not a number: '1e'"),
    "--1": ("refuse", "not a number: '--1'"),
    "1..2": ("refuse", "not a number: '1..2'"),
    "nan": ("refuse", "nan is not allowed: values must be finite"),
    "NaN": ("refuse", "NaN is not allowed: values must be finite"),
    "inf": ("refuse", "inf is not allowed: values must be finite"),
    "-inf": ("refuse", "-inf is not allowed: values must be finite"),
    "1e309": ("refuse", "1e309 is out of float32 range (about ±3.4e38)"),
    "-1e309": ("refuse", "-1e309 is out of float32 range (about ±3.4e38)"),
    "3.5e38": ("refuse", "3.5e38 is out of float32 range"),
    "0x10": ("refuse", "not a number: '0x10'"),
    "1_000": ("refuse", "not a number: '1_000'"),
    "１２": ("refuse", "not a number: '１２' (use digits 0-9, '.', '-', and e.g. 1e-3)"),  # full-width digits
    "١٢": ("refuse", "not a number: '١٢' (use digits 0-9, '.', '-', and e.g. 1e-3)"),  # Arabic-Indic digits
    "1２": ("refuse", "not a number: '1２'"),  # one ASCII digit, one full-width
    "1e２": ("refuse", "not a number: '1e２'"),  # a full-width exponent
    LONG: ("refuse", "too long: a number has at most 64 characters"),
    PASTED: ("refuse", "one number only, on one line"),
    "1.5\r": ("refuse", "one number only, on one line"),
    "2": ("accept", 2.0),
    " -3.5 ": ("accept", -3.5),  # surrounding spaces are ignored
    "1e-3": ("accept", 0.001),
    ".5": ("accept", 0.5),
    "3.": ("accept", 3.0),
    "+4": ("accept", 4.0),
    "1E2": ("accept", 100.0),
    "3.4e38": ("accept", 3.4e38),  # inside float32 range
    "1e-400": ("accept", 0.0),  # below the smallest float: it means zero
}
# Only ASCII digits: other scripts' digits were accepted (`\d`) until 1515e9a.
NAMES = {LONG: "10,000 digits", PASTED: "pasted text of 3 lines", "１２": "full-width 12", "١٢": "Arabic-Indic 12"}
CASES = [pytest.param(text, *TABLE[text], id=NAMES.get(text, repr(text))) for text in TABLE]


def edit_from_text(session: Session, name: str, index: tuple[int, ...], text: str):
    """What the value editor does with the text in its input: parse it, then set the element."""
    integer = not session.values[name].is_floating_point()
    return session.set_element(name, index, parse_number(text, integer=integer))


@pytest.mark.parametrize("text, verdict, meaning", CASES)
def test_parse_number(text, verdict, meaning, record_property):
    """parse_number: accepted with the stated value, or EditError with the stated message."""
    record_property("expected", f"{verdict}: {meaning}")
    if verdict == "accept":
        assert parse_number(text) == meaning
    else:
        with pytest.raises(EditError) as refused:
            parse_number(text)
        assert meaning in str(refused.value)
        assert "\n" not in str(refused.value) and len(str(refused.value)) < 120


@pytest.mark.parametrize("text, verdict, meaning", CASES)
def test_text_through_session(text, verdict, meaning):
    """The same text typed for w (linear_regression) after two edits: refusals change nothing."""
    session = Session(bundled("linear_regression"))
    session.set_element("w", (), 1.0)
    session.set_element("b", (), 2.0)
    session.undo()  # so there is a redo entry to keep as well
    before = state_of(session)
    if verdict == "accept":
        edit_from_text(session, "w", (), text)
        assert session.values["w"].item() == pytest.approx(meaning, rel=1e-7)
        assert len(session.undo_stack) == len(before.undo) + 1 and not session.redo_stack
    else:
        with pytest.raises(EditError):
            edit_from_text(session, "w", (), text)
        assert unchanged(session, before)


CLASS_INDEX_TEXT = {
    "2.5": "2.5 is not a whole number; this tensor holds class indices",
    "1e-3": "not a whole number",
    "x": "not a number",
    # past int64: refused by the session since 1515e9a (torch's overflow escaped before)
    "9223372036854775808": "classes[1]: 9.223372036854776e+18 is out of range for a class index",
    "1e30": "classes[1]: 1e+30 is out of range for a class index",
    # whole numbers, but not a class of softmax_classifier's three
    "3": "class index out of range in cross_entropy(): 3 is not a class of 0..2",
    "-1": "class index out of range in cross_entropy(): -1 is not a class of 0..2",
    "-100": "class index out of range in cross_entropy(): -100 is not a class of 0..2",  # torch's ignore_index
}


@pytest.mark.parametrize("text, message", list(CLASS_INDEX_TEXT.items()), ids=list(CLASS_INDEX_TEXT))
def test_class_index_text_refused(text, message, record_property):
    """A class-index (int) tensor takes whole numbers of its classes only; a refusal changes nothing."""
    record_property("expected", f"refuse: {message}")
    session = Session(bundled("softmax_classifier"))
    before = state_of(session)
    with pytest.raises(EditError) as refused:
        edit_from_text(session, "classes", (1,), text)
    assert message in str(refused.value)
    assert unchanged(session, before)


def test_class_index_text_accepted():
    session = Session(bundled("softmax_classifier"))
    edit_from_text(session, "classes", (1,), " 2 ")
    assert session.values["classes"].tolist() == [0, 2, 2, 1]
