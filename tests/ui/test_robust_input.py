"""Hostile input to the explorer's value editor, computations that go bad, a tiny terminal.

Every hostile text is checked where it is decided, in milliseconds: the engine's
`parse_number` (which the value editor calls) refuses it with its reason, and a number it
accepts that torch cannot compute (a class past the classes) is refused by the session.
A few of them also go through Pilot, typed key by key and pasted, to check that the
editor shows the engine's reason word for word and changes nothing.

Every refused edit is checked on the session itself: the leaf values (bit for bit), the
undo history (the same entries) and the snapshot (the same object) are unchanged.
"""

from __future__ import annotations

import math

import pytest
import torch
from textual import events
from ui_support import grid_cells, make_app, pilot_test, ready, select_leaf, static_text, tree_label, type_value

from backprop_tui.engine import EditError, Session, load_preset, resolve_preset
from backprop_tui.engine.numbers import parse_number
from backprop_tui.ui.widgets.weight_editor import EditInput, ElementGrid, LeafList, WeightEditor

SIZE = (100, 30)

TYPED = ["", " ", "abc", "1e", "--1", "1..2", "nan", "NaN", "inf", "-inf", "1e309", "-1e309", "0x10", "1_000"]
PASTED = {
    "full-width digits": "１２",
    "Arabic-Indic digits": "١٢",
    "10,000 characters": "1" * 10_000,
    "multi-line paste": "1.5\n2.5\n",
    "CRLF paste": "7\r\n",
}
# what each must say, in part (the engine's own message is checked in full below)
EXPECTED = {
    "": "enter a number",
    " ": "enter a number",
    "abc": "not a number",
    "1e": "not a number",
    "--1": "not a number",
    "1..2": "not a number",
    "nan": "not allowed",
    "NaN": "not allowed",
    "inf": "not allowed",
    "-inf": "not allowed",
    "1e309": "out of float32 range",
    "-1e309": "out of float32 range",
    "0x10": "not a number",
    "1_000": "not a number",
    "１２": "not a number",
    "١٢": "not a number",
    "1" * 10_000: "too long",
    "1.5\n2.5\n": "one number only, on one line",
    "7\r\n": "one number only, on one line",
}


def state_of(session):
    return (
        {name: value.clone() for name, value in session.values.items()},
        dict(session.requires_grad),
        list(session.undo_stack),
        list(session.redo_stack),
        session.snapshot,
    )


def assert_unchanged(session, before) -> None:
    values, flags, undo, redo, snapshot = before
    assert set(session.values) == set(values)
    for name, value in values.items():
        assert torch.equal(session.values[name], value), name
    assert session.requires_grad == flags
    assert session.undo_stack == undo and all(a is b for a, b in zip(session.undo_stack, undo))
    assert session.redo_stack == redo
    assert session.snapshot is snapshot


def edit_message(app) -> str:
    return static_text(app, "#edit-message")


async def choose_leaf(pilot, name: str) -> None:
    """From wherever the focus is: the leaf list, down to `name`, Enter to its grid."""
    app = pilot.app
    app.query_one(LeafList).focus()
    await pilot.pause()
    leaves = [n.name for n in app.session.snapshot.leaves]
    await pilot.press("home", *["down"] * leaves.index(name), "enter")
    await pilot.pause()
    assert app.query_one(WeightEditor).leaf == name and isinstance(app.focused, ElementGrid)


async def open_editor(pilot) -> EditInput:
    await pilot.press("enter")
    await pilot.pause()
    field = pilot.app.query_one(EditInput)
    assert pilot.app.focused is field
    return field


@pytest.mark.parametrize("text", [*TYPED, *PASTED.values()], ids=[*TYPED, *PASTED])
def test_every_hostile_text_is_refused_by_the_parser_with_its_reason(text):
    with pytest.raises(EditError) as refused:
        parse_number(text)
    assert EXPECTED[text] in str(refused.value), (text[:20], str(refused.value))
    with pytest.raises(EditError):
        parse_number(text, integer=True)  # nor as a class index


# through the editor: typed key by key, and pasted (a paste arrives as one event)
THROUGH_PILOT = [("1..2", "typed"), (" ", "typed"), (PASTED["multi-line paste"], "pasted"),
                 (PASTED["10,000 characters"], "pasted")]


@pilot_test
async def test_hostile_texts_are_refused_beside_the_input_and_change_nothing(record_property):
    """Typed and pasted texts into w's value editor: each refused with the engine's reason, nothing changes."""
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select_leaf(pilot, "w")
        await pilot.press("+")  # one accepted edit, so there is undo history to keep
        await pilot.pause()
        session = app.session
        assert len(session.undo_stack) == 1
        cells = grid_cells(app)
        label = tree_label(app, "J")
        record_property("tried", len(THROUGH_PILOT))
        for text, how in THROUGH_PILOT:
            before = state_of(session)
            field = await open_editor(pilot)
            if how == "typed":
                await pilot.press("backspace", *[("space" if ch == " " else ch) for ch in text])
                assert field.value == text
            else:
                app.query_one(EditInput).post_message(events.Paste(text))
                await pilot.pause()
                if "\n" in text or "\r" in text:
                    # refused as it arrives (Input alone would keep the first line);
                    # the input keeps what it held, so nothing was submitted
                    assert field.value != text
                else:
                    assert field.value == text  # replaced the selected old value
            if field.value == text:
                await pilot.press("enter")
                await pilot.pause()
            shown = edit_message(app)
            with pytest.raises(EditError) as refused:
                parse_number(text)
            assert shown == str(refused.value)  # the engine's reason, word for word
            assert_unchanged(session, before)
            assert app.focused is field  # still editing, so the text can be fixed
            assert grid_cells(app) == cells and tree_label(app, "J") == label
            await pilot.press("escape")
            await pilot.pause()
            assert isinstance(app.focused, ElementGrid)
        record_property("held", len(THROUGH_PILOT))
        # still working: a good value after all that
        await type_value(pilot, "2")
        assert app.session.snapshot.node("w").scalar() == 2.0
        assert app.session.snapshot.loss == 50.0


BAD_CLASSES = ("7", "-1", "-100", "3", "99999999999999999999999")  # -100: torch's ignore_index


@pytest.mark.parametrize("text", BAD_CLASSES)
def test_class_index_past_the_classes_is_refused_by_the_session_and_rolled_back(text):
    """softmax_classifier classes[0] = 7: torch cannot compute it; the session says so and changes nothing."""
    session = Session(load_preset(resolve_preset("softmax_classifier")))
    before = state_of(session)
    with pytest.raises(EditError) as refused:
        session.set_element("classes", (0,), parse_number(text, integer=True))
    assert "class" in str(refused.value) or "range" in str(refused.value), (text, str(refused.value))
    assert_unchanged(session, before)
    session.set_element("classes", (0,), parse_number("2", integer=True))  # a real class: accepted
    assert int(session.values["classes"][0]) == 2


@pilot_test
async def test_class_index_past_the_classes_is_shown_beside_the_input():
    """Through the editor: the session's reason beside the input, nothing changed, a real class accepted after."""
    app = make_app("softmax_classifier")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select_leaf(pilot, "classes")
        session = app.session
        before = state_of(session)
        await open_editor(pilot)
        await pilot.press("backspace", "7", "enter")
        await pilot.pause()
        shown = edit_message(app)
        with pytest.raises(EditError) as refused:
            Session(session.preset).set_element("classes", (0,), 7)
        assert shown == str(refused.value)
        assert_unchanged(session, before)
        await pilot.press("escape")
        await pilot.pause()
        await type_value(pilot, "2")  # a real class: accepted
        assert int(app.session.values["classes"][0]) == 2


LOG_PRESET = """
name = "log_of_x"
title = "log of x, 0/0 and overflow"
output = "J"

[tensors.x]
role = "parameter"
value = 2.0

[tensors.z]
role = "parameter"
value = 1.0

[[steps]]
name = "L"
expr = "log(x)"

[[steps]]
name = "Q"
expr = "z / z"

[[steps]]
name = "E"
expr = "exp(z)"

[[steps]]
name = "J"
expr = "L + Q + E"
"""


@pilot_test
async def test_computations_that_go_bad_show_nan_with_a_warning_and_undo_brings_them_back(tmp_path):
    """log(-1) = nan, 0/0 = nan, exp(100) = inf: shown, warned about; undo restores finite numbers."""
    path = tmp_path / "log_of_x.toml"
    path.write_text(LOG_PRESET, encoding="utf-8")
    app = make_app(str(path))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        session = app.session
        finite_loss = session.snapshot.loss
        assert math.isfinite(finite_loss)
        for leaf, text, bad in (("x", "-1", "L"), ("z", "0", "Q"), ("z", "100", "E")):
            await choose_leaf(pilot, leaf)
            await type_value(pilot, text)
            snapshot = session.snapshot
            assert not math.isfinite(snapshot.loss)
            assert snapshot.warnings, "a non-finite snapshot carries warnings"
            status = static_text(app, "#header-status")
            assert any(w in status for w in snapshot.warnings), status
            value = snapshot.node(bad).scalar()
            shown = "nan" if math.isnan(value) else "inf"
            assert shown in tree_label(app, bad)
            assert shown in static_text(app, "#header-output")
            # keeps working: undo brings back the last finite state, on screen too
            await pilot.press("ctrl+z")
            await pilot.pause()
            assert session.snapshot.loss == finite_loss
            assert not session.snapshot.warnings
            value_shown = static_text(app, "#header-output").strip().split(" Δ")[0]  # the delta from nan is Δnan
            assert (
                "nan" not in value_shown
                and "inf" not in value_shown
                and "nan" not in tree_label(app, bad).split(" Δ")[0]
            )
            await pilot.press("ctrl+y")  # and redo goes bad again without harm
            await pilot.pause()
            assert not math.isfinite(session.snapshot.loss)
            await pilot.press("ctrl+z")
            await pilot.pause()
        assert app._exception is None


@pilot_test
async def test_a_terminal_resized_to_40x12_and_back_keeps_working():
    """Resize to 40x12, press keys there, edit, resize back: panels follow, no exception."""
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select_leaf(pilot, "w")
        await pilot.resize_terminal(40, 12)
        await pilot.pause()
        await pilot.press("+", "tab", "down", "shift+tab", "?")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        app.query_one(ElementGrid).focus()
        await pilot.pause()
        await type_value(pilot, "2")  # an edit at 40x12
        assert app.session.snapshot.node("w").scalar() == 2.0
        assert app.session.snapshot.loss == 50.0
        await pilot.resize_terminal(12, 5)  # smaller still
        await pilot.pause()
        await pilot.resize_terminal(*SIZE)
        await pilot.pause()
        app.query_one(ElementGrid).focus()
        await type_value(pilot, "1")
        assert app.session.snapshot.node("w").scalar() == 1.0
        J = ((torch.tensor(1.0) * -3.0 + 1.0 - 5.0) ** 2 / 2).item()
        assert app.session.snapshot.loss == J
        assert static_text(app, "#header-output").strip().startswith(f"J = {J:g}")
        assert tree_label(app, "J").startswith(f"J = d**2 / 2  {J:g}")
        assert app.query_one(WeightEditor).leaf == "w" and grid_cells(app)[0][1].startswith("1")
        assert app._exception is None


@pilot_test
async def test_arrow_keys_typed_faster_than_they_are_handled_settle_on_the_last_leaf():
    # In a terminal, keys typed quickly arrive before the leaf list's highlight messages
    # are handled. A stale message (for a row the highlight has already left) used to move
    # the highlight back, and the two leaves swapped forever, refilling the grid and
    # resetting its cursor (so down did nothing in it).
    app = make_app("simple_nn")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        editor = app.query_one(WeightEditor)
        fills = []
        original = editor._fill_grid

        def counting() -> None:
            fills.append(editor.leaf)
            original()

        editor._fill_grid = counting
        await pilot.press("tab")
        await pilot.pause()
        assert isinstance(app.focused, LeafList)
        for _ in range(2):  # as a terminal delivers them: both keys before any message is handled
            app.post_message(events.Key("down", None))
        for _ in range(20):
            await pilot.pause()
        assert editor.leaf == "linear1.weight" and app.query_one(LeafList).highlighted == 2
        fills.clear()
        for _ in range(20):
            await pilot.pause()
        assert fills == []  # settled: nothing refills the grid any more
        await pilot.press("enter", "down", "plus")
        for _ in range(10):
            await pilot.pause()
        assert app.session.undo_stack[-1].label.startswith("linear1.weight[0,1]")
