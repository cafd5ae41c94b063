"""SVG snapshots of the explorer (pytest-textual-snapshot).

Deterministic: fixed theme, no blinking cursors, TEXTUAL_ANIMATIONS=none (set by the
Makefile and below), numbers at fixed significant digits, and the loader thread waited
for before the picture. Update with `make snapshot-update`, then look at every change.
"""

from __future__ import annotations

import os

import pytest
from ui_support import CLEAR, make_app, ready, select_leaf, settle, type_value

from backprop_tui.engine import bundled_presets

os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")

PRESETS = sorted(bundled_presets())
SIZES = {"100x30": (100, 30), "80x24": (80, 24)}
BROKEN_PRESET = 'output = "J"\n[tensors.x]\nrole = "input"\nvalue = 1.0\n[[steps]]\nname = "J"\nexpr = "x +"\n'


@pytest.mark.parametrize("size", list(SIZES), ids=list(SIZES))
@pytest.mark.parametrize("preset", PRESETS)
def test_preset(snap_compare, preset, size):
    assert snap_compare(make_app(preset), terminal_size=SIZES[size], run_before=ready)


def test_edit_w_to_2(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await select_leaf(pilot, "w")
        await type_value(pilot, "2")

    assert snap_compare(make_app("linear_regression"), terminal_size=(100, 30), run_before=run_before)


def test_editing_input_open(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await select_leaf(pilot, "linear1.weight")
        await pilot.press("down", "enter", *CLEAR, *"0.25")

    assert snap_compare(make_app("simple_nn"), terminal_size=(100, 30), run_before=run_before)


def test_invalid_input(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await select_leaf(pilot, "w")
        await type_value(pilot, "abc")

    assert snap_compare(make_app("linear_regression"), terminal_size=(100, 30), run_before=run_before)


def test_requires_grad_off(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await select_leaf(pilot, "w")
        await pilot.press("g")

    assert snap_compare(make_app("linear_regression"), terminal_size=(100, 30), run_before=run_before)


def test_sgd_steps_and_sparkline(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("l", *CLEAR, *"0.1", "enter")
        await pilot.press(*["s"] * 6)
        await settle(pilot)  # the analyses each step starts, then the messages they post

    assert snap_compare(make_app("simple_nn"), terminal_size=(100, 30), run_before=run_before)


def test_chain_rule_in_inspector(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("down", "down")

    assert snap_compare(make_app("scalar_chain"), terminal_size=(100, 30), run_before=run_before)


@pytest.mark.parametrize("preset", ["linear_regression", "simple_nn"])
def test_raw_autograd_view(snap_compare, preset):
    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("a")

    assert snap_compare(make_app(preset), terminal_size=(100, 30), run_before=run_before)


def test_help(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("question_mark")

    assert snap_compare(make_app("scalar_chain"), terminal_size=(100, 30), run_before=run_before)


def test_preset_picker(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("p")

    assert snap_compare(make_app("scalar_chain"), terminal_size=(100, 30), run_before=run_before)


def test_learning_rate_prompt_with_error(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("l", *CLEAR, *"fast", "enter")

    assert snap_compare(make_app("linear_regression"), terminal_size=(80, 24), run_before=run_before)


def test_error_dialog(snap_compare, tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text(BROKEN_PRESET)

    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("o", *str(bad), "enter")
        await ready(pilot)

    assert snap_compare(make_app("linear_regression"), terminal_size=(100, 30), run_before=run_before)


def test_light_theme(snap_compare):
    """Textual's light theme, as a projector in a lit room wants it."""
    from backprop_tui.ui import BackpropApp

    app = BackpropApp("simple_nn", cursor_blink=False, theme="textual-light")
    assert snap_compare(app, terminal_size=(100, 30), run_before=ready)
