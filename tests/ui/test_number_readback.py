"""Every number the weight grid and the header draw, read back from the screen and checked
against the session: whole, or rounded to the digits shown, never cut. Every bundled
preset at 80, 100, 120 and 200 columns (one app a size; the presets are opened in it)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from backprop_tui.engine.format import difference
from backprop_tui.engine.preset import bundled_presets
from backprop_tui.ui.widgets.weight_editor import ElementGrid, WeightEditor

from ui_support import make_app, pilot_test, ready, settle, static_text

NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?"
CELL = re.compile(rf"^(?P<number>{NUMBER}|no grad)(?: Δ(?P<delta>{NUMBER}))?$")


def unit(text: str) -> float:
    """Half of this is how far a rounded number may be from the value: one unit of its last digit."""
    mantissa, _, exponent = text.partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return 10.0 ** (int(exponent or 0) - decimals)


def assert_shows(text: str, value: float, what: str, slack: float = 0.0) -> None:
    assert re.fullmatch(NUMBER, text), f"{what}: {text!r} is not a number"
    assert abs(float(text) - float(value)) <= unit(text) / 2 * (1 + 1e-9) + slack, f"{what}: {text} for {value!r}"


def check_grid(app, what: str) -> int:
    """Each row of the grid's page against the session; the number of numbers checked."""
    editor = app.query_one(WeightEditor)
    grid = app.query_one(ElementGrid)
    node = app.session.snapshot.node(editor.leaf)
    previous = app.session.previous
    before = previous.node(node.name) if previous is not None and node.name in previous else None
    on_screen = [strip.text for strip in grid.render_lines(grid.region.reset_offset)][1:]
    checked = 0
    for row in range(grid.row_count):
        text = grid.row_text(row)
        cells = re.split(r" {2,}", text.strip())
        assert len(cells) == 3, f"{what} {node.name}: {text!r}"  # index, value, grad
        label, value, grad = cells
        index = tuple(int(i) for i in label.strip("[]()").split(",") if i)
        flat = editor.page * 500 + row
        assert index == tuple(int(i) for i in np.unravel_index(flat, node.shape)), f"{what}: {label}"
        where = f"{what} {node.name}{label}"
        for cell, array, old in ((value, node.value, None if before is None else before.value),
                                 (grad, node.grad, None if before is None else before.grad)):
            match = CELL.match(cell)
            assert match, f"{where}: {cell!r}"
            if array is None:
                assert match["number"] == "no grad", where
                continue
            x = array.reshape(-1)[flat]
            assert_shows(match["number"], x, where)
            checked += 1
            if match["delta"] is not None:
                assert old is not None, where
                was = old.reshape(-1)[flat]
                resolution = max(abs(float(x)), abs(float(was))) * 2.0**-22
                assert_shows(match["delta"], difference(x, was), f"{where} Δ", slack=resolution)
                checked += 1
        y = row - round(grid.scroll_y)
        if 0 <= y < len(on_screen) and grid.virtual_size.width <= grid.size.width:
            assert on_screen[y].rstrip() == text.rstrip(), where  # drawn whole
    return checked


def check_header(app, what: str) -> None:
    snapshot = app.session.snapshot
    output = static_text(app, "#header-output").strip()
    match = re.fullmatch(rf"{re.escape(snapshot.output)} = ({NUMBER})(?: Δ({NUMBER}))?", output)
    assert match, f"{what}: {output!r}"
    assert_shows(match[1], snapshot.loss, f"{what} header")
    stats = static_text(app, "#header-stats")
    loss = re.search(rf"loss ({NUMBER})", stats)
    assert loss, f"{what}: {stats!r}"
    assert_shows(loss[1], snapshot.loss, f"{what} header stats")
    lr = re.search(rf"lr ({NUMBER})", stats)
    assert_shows(lr[1], app.session.learning_rate, f"{what} header lr")


PRESETS = sorted(bundled_presets())


@pytest.mark.parametrize("width", [80, 100, 120, 200])
@pilot_test
async def test_every_number_in_the_grid_and_the_header_reads_back(width):
    app = make_app(PRESETS[0])
    async with app.run_test(size=(width, 24 if width == 80 else 35)) as pilot:
        await ready(pilot)
        checked = 0
        for name in PRESETS:
            if name != PRESETS[0]:
                app.open_preset(name)
                await ready(pilot)
            what = f"{name} at {width}"
            editor = app.query_one(WeightEditor)
            leaves = [leaf.name for leaf in app.session.snapshot.leaves]
            for leaf in leaves:
                editor.select_leaf(leaf, focus_grid=True)
                await pilot.pause()
                checked += check_grid(app, what)
            check_header(app, what)
            # a nudge of the last leaf's first element: deltas beside the numbers
            await pilot.press("+")
            await settle(pilot)
            checked += check_grid(app, f"{what} after a nudge")
            check_header(app, f"{what} after a nudge")
        assert checked > 1000
