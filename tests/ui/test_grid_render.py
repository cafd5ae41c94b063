"""The weight grid (ElementGrid, on Textual's line API) in a small app around it, with
pages of made-up numbers: what it draws, what it repaints, its keys and its messages."""

from __future__ import annotations

import re

import numpy as np
import pytest
from textual.app import App

from backprop_tui.ui.widgets.element_grid import ElementGrid, GridPage

from ui_support import pilot_test

NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|nan|[+-]?inf")


class GridApp(App):
    CSS = "ElementGrid { height: 1fr; }"

    def __init__(self, page: GridPage, width: int | None = None) -> None:
        super().__init__()
        self.first_page, self.width = page, width
        self.messages: list = []

    def compose(self):
        grid = ElementGrid(id="grid")
        if self.width:
            grid.styles.width = self.width
        yield grid

    def on_mount(self) -> None:
        grid = self.query_one(ElementGrid)
        grid.show(self.first_page, reset=True)
        grid.focus()

    def on_element_grid_edit_requested(self, message) -> None:
        self.messages.append(("edit", self.query_one(ElementGrid).cursor_row))

    def on_element_grid_cursor_moved(self, message) -> None:
        self.messages.append(("cursor", message.row))


def page_of(value, grad=None, value_before=None, grad_before=None) -> GridPage:
    value = np.asarray(value, dtype=np.float32)

    def f32(array):
        return None if array is None else np.asarray(array, dtype=np.float32)

    return GridPage(tuple(f"[{i}]" for i in range(value.size)), value, f32(grad), f32(value_before), f32(grad_before))


def drawn(grid: ElementGrid) -> list[str]:
    """The grid's lines as the screen has them (header first)."""
    return [strip.text for strip in grid.render_lines(grid.region.reset_offset)]


def assert_rounded(text: str, value: float) -> None:
    """`text` is `value` rounded to the digits `text` shows (not cut): at most half a unit
    of its last digit away."""
    mantissa = text.split("e")[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    exponent = int(text.split("e")[1]) if "e" in text else 0
    unit = 10.0 ** (exponent - decimals)
    assert abs(float(text) - value) <= unit / 2 * (1 + 1e-9), f"{text} for {value!r}"


def numbers_in(cell: str) -> list[str]:
    return NUMBER.findall(cell.replace("Δ", " "))


VALUES = [-0.000378189, -0.00268855, 123456.75, 0.999983, 3.0, -1.5e-9, 7.45058e-09, 42.0]
GRADS = [-0.00153979, 0.0419592, -1e-12, 2.5, 0.0, -3.25e7, 1.0, -0.1]


@pytest.mark.parametrize("width", [18, 24, 30, 40, 60])
@pilot_test
async def test_every_number_is_whole_or_rounded_never_cut(width):
    before = [v - 0.1 for v in VALUES]
    page = page_of(VALUES, GRADS, before, [g + 0.000960905 for g in GRADS])
    app = GridApp(page, width)
    async with app.run_test(size=(80, 14)) as pilot:
        await pilot.pause()
        grid = app.query_one(ElementGrid)
        lines = drawn(grid)
        if grid.virtual_size.width <= width:
            assert lines[0].split() == ["index", "value", "grad"]
        for row, line in enumerate(lines[1:1 + len(VALUES)]):
            assert len(line) == width
            whole = grid.row_text(row)
            if grid.virtual_size.width <= width:
                assert line.rstrip() == whole.rstrip()  # nothing off to the right
            index, value, grad = re.split(r" {2,}", whole.strip())
            assert index == f"[{row}]"
            numbers = numbers_in(value)
            assert_rounded(numbers[0], float(np.float32(VALUES[row])))
            if len(numbers) > 1:  # the Δ: the nudge of 0.1, not float32's 0.0999999
                assert numbers[1] == "+0.1"
            grads = numbers_in(grad)
            assert_rounded(grads[0], float(np.float32(GRADS[row])))
        digits, deltas = grid.budget
        assert digits >= 2
        if width >= 60:
            assert grid.budget == (6, True)  # room for everything
        if width <= 30:
            assert not deltas  # the Δ markers go before the digits get fewer than needed


@pilot_test
async def test_a_narrow_grid_scrolls_sideways_rather_than_cut_a_number():
    app = GridApp(page_of([-0.000378189, 1.5], [1e-30, -2e-30]), 12)
    async with app.run_test(size=(40, 8)) as pilot:
        await pilot.pause()
        grid = app.query_one(ElementGrid)
        assert grid.virtual_size.width > 12
        index, value, grad = re.split(r" {2,}", grid.row_text(0).strip())
        assert_rounded(value, -0.000378189)
        assert_rounded(grad, 1e-30)


@pilot_test
async def test_an_edit_repaints_only_the_rows_whose_numbers_changed(monkeypatch):
    values = np.linspace(-1, 1, 6)
    app = GridApp(page_of(values, values * 2), 40)
    async with app.run_test(size=(60, 12)) as pilot:
        await pilot.pause()
        grid = app.query_one(ElementGrid)
        painted: list[int] = []
        render_line = ElementGrid.render_line

        def counting(self, y):
            painted.append(y)
            return render_line(self, y)

        monkeypatch.setattr(ElementGrid, "render_line", counting)
        edited = values.copy()
        edited[3] += 0.5  # row 3 only; the numbers keep their widths
        grid.show(GridPage(grid.page.labels, edited.astype(np.float32), (values * 2).astype(np.float32)))
        await pilot.pause()
        assert painted == [4]  # the header is line 0
        assert grid.row_text(3).split()[1] == "0.7"


@pilot_test
async def test_keys_move_the_cursor_and_enter_asks_to_edit():
    app = GridApp(page_of(np.arange(30.0), np.arange(30.0)), 40)
    async with app.run_test(size=(60, 10)) as pilot:
        await pilot.pause()
        grid = app.query_one(ElementGrid)
        await pilot.press("down", "down", "enter")
        assert app.messages == [("cursor", 1), ("cursor", 2), ("edit", 2)]
        await pilot.press("end")
        assert grid.cursor_row == 29
        lines = drawn(grid)
        assert lines[0].split() == ["index", "value", "grad"]  # the header stays put
        assert lines[-1].split()[:2] == ["[29]", "29"]  # the cursor's row is in view
        await pilot.press("home", "pagedown")
        assert grid.cursor_row == grid.scrollable_content_region.height - 1
        app.messages.clear()
        await pilot.click(ElementGrid, offset=(3, 3))  # the third row: the cursor moves there
        assert app.messages == [("cursor", 2 + round(grid.scroll_y))]
        await pilot.click(ElementGrid, offset=(3, 3))  # a click on the cursor's row edits it
        assert app.messages[-1][0] == "edit"


def test_a_nudge_of_a_tenth_reads_as_a_tenth_in_every_panel():
    """The header and the graph show a scalar's change through scalar_delta; the grid through
    the same difference: float32's 2.1 - 2.0 = 0.0999999 reads +0.1."""
    from backprop_tui.ui.format import delta_text, scalar_delta

    delta = scalar_delta(np.float32([2.1]), np.float32([2.0]))
    assert delta_text(delta).plain == " Δ+0.1"
    page = page_of([2.1], [1.0], [2.0], [1.0])
    from backprop_tui.ui.widgets.element_grid import row_cells

    assert row_cells(page, 0, 6, True).value_delta == "Δ+0.1"
