"""The weight grid's own caches (ElementGrid over DataTable): what it shows is what
DataTable would show, and an edit renders only the cells it changed."""

from __future__ import annotations

from textual._styles_cache import StylesCache
from textual.cache import LRUCache
from textual.coordinate import Coordinate
from textual.geometry import Region
from textual.widgets import DataTable

from backprop_tui.ui.widgets.weight_editor import ElementGrid, WeightEditor

from ui_support import make_app, open_leaf, pilot_test, ready, settle, type_value

SIZE = (120, 40)

_CACHES = ("_row_render_cache", "_cell_render_cache", "_row_renderable_cache", "_line_cache",
           "_offset_cache", "_ordered_row_cache")


def shown(grid: ElementGrid) -> list[list]:
    """The grid's lines as the screen has them: its line cache (only lines refreshed since
    are rendered again), through ElementGrid's caches."""
    return [list(strip) for strip in grid.render_lines(Region(0, 0, *grid.size))]


def datatable_render(grid: ElementGrid) -> list[list]:
    """The same grid rendered by DataTable alone, from empty caches; the grid's caches are
    put back afterwards, so the next `shown` still starts from them."""
    saved = {name: getattr(grid, name) for name in _CACHES}
    saved_lines = grid._styles_cache
    try:
        for name in _CACHES:
            setattr(grid, name, LRUCache(1000))
        grid._styles_cache = StylesCache()
        grid.__class__ = DataTable  # none of ElementGrid's overrides
        DataTable._get_styles_to_render_cell.cache_clear()
        return [list(strip) for strip in grid.render_lines(Region(0, 0, *grid.size))]
    finally:
        grid.__class__ = ElementGrid
        for name, cache in saved.items():
            setattr(grid, name, cache)
        grid._styles_cache = saved_lines


def assert_as_datatable(grid: ElementGrid, what: str) -> None:
    ours, theirs = shown(grid), datatable_render(grid)
    assert len(ours) == len(theirs), what
    for y, (a, b) in enumerate(zip(ours, theirs)):
        # segments: text and style, and the style's meta (row and column, read by the mouse)
        assert a == b, f"{what}: line {y}: {''.join(s.text for s in a)!r} != {''.join(s.text for s in b)!r}"
        assert [s.style.meta if s.style else None for s in a] == [s.style.meta if s.style else None for s in b], what


@pilot_test
async def test_the_grid_shows_what_datatable_would_after_each_change():
    app = make_app("simple_nn")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        grid = await open_leaf(pilot, "linear1.weight")
        editor = app.query_one(WeightEditor)
        assert grid.row_count == 6 and grid.has_focus
        assert_as_datatable(grid, "selected")
        steps = [
            ("nudge up", ("+",)),
            ("nudge again", ("+",)),  # the deltas of the last edit change, not the width
            ("cursor down", ("down",)),
            ("nudge the second row", ("-",)),
            ("cursor to the last row", ("down",) * 4),
            ("nudge the last row", ("+",)),
            ("grid loses focus", ("shift+tab",)),
            ("grid has focus again", ("tab",)),
        ]
        for what, keys in steps:
            await pilot.press(*keys)
            await settle(pilot)
            assert_as_datatable(grid, what)
        assert isinstance(app.focused, ElementGrid)

        # a value wider than the column: the column widens (update_width), every row moves
        assert grid.cursor_row == 5
        await pilot.press("up")
        await type_value(pilot, "123456.75")
        await settle(pilot)
        assert grid.get_cell(editor._row_keys[4], "value").plain.startswith("123457 ")
        assert_as_datatable(grid, "a wider value")
        await pilot.press("+")
        await settle(pilot)
        assert_as_datatable(grid, "nudged after widening")

        # the mouse's hover cursor over another row, and then no cursor at all
        grid._set_hover_cursor(True)
        grid.hover_coordinate = Coordinate(3, 1)
        await settle(pilot)
        assert_as_datatable(grid, "hover")
        await pilot.press("+")
        await settle(pilot)
        assert_as_datatable(grid, "nudged under hover")
        grid.show_cursor = False
        await settle(pilot)
        assert_as_datatable(grid, "no cursor")
        grid.show_cursor = True

        # another leaf fills the grid again (clear, new rows and keys)
        await open_leaf(pilot, "linear1.bias")
        assert_as_datatable(grid, "another leaf")
        await pilot.press("+")
        await settle(pilot)
        assert_as_datatable(grid, "nudged the other leaf")


@pilot_test
async def test_an_edit_renders_only_the_cells_and_lines_it_changed(monkeypatch):
    app = make_app("simple_nn")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        grid = await open_leaf(pilot, "linear1.weight")
        await pilot.press("+")  # the first edit adds deltas: the value column widens
        await settle(pilot)

        rendered_cells: list[tuple[int, int]] = []
        rendered_lines: list[int] = []
        updates: list[tuple[int, str, bool]] = []
        cell, text_cell = DataTable._render_cell, ElementGrid._render_text_cell
        line, update = DataTable.render_line, ElementGrid.update_cell

        def render_cell(self, row_index, column_index, *args, **kwargs):  # through Rich
            rendered_cells.append((row_index, column_index))
            return cell(self, row_index, column_index, *args, **kwargs)

        def render_text_cell(self, row_index, column_index, *args, **kwargs):  # the short way
            lines = text_cell(self, row_index, column_index, *args, **kwargs)
            if lines is not None:
                rendered_cells.append((row_index, column_index))
            return lines

        def render_line(self, y):
            rendered_lines.append(y)
            return line(self, y)

        def update_cell(self, row_key, column_key, value, *, update_width=False):
            updates.append((self.get_row_index(row_key), str(column_key), update_width))
            return update(self, row_key, column_key, value, update_width=update_width)

        monkeypatch.setattr(DataTable, "_render_cell", render_cell)
        monkeypatch.setattr(ElementGrid, "_render_text_cell", render_text_cell)
        monkeypatch.setattr(DataTable, "render_line", render_line)
        monkeypatch.setattr(ElementGrid, "update_cell", update_cell)
        checked = 0
        for keys in ("+", "-", "down", "+", "-"):
            rendered_cells.clear(), rendered_lines.clear(), updates.clear()
            await pilot.press(keys)
            await settle(pilot)
            if keys == "down":  # the cursor moved: the two rows' cells, all of them
                assert sorted(rendered_lines) == [1, 2]
                assert sorted(rendered_cells) == [(r, c) for r in (0, 1) for c in range(3)]
                continue
            assert updates, "the edit changed no cell"
            if any(widen for _, _, widen in updates):
                continue  # a column widened: every line is new (DataTable's own path)
            columns = {"index": 0, "value": 1, "grad": 2}
            changed = {(row, columns[column]) for row, column, _ in updates}
            # every row is on screen (6 rows); a line is the header (y=0) plus the row
            assert sorted(rendered_cells) == sorted(changed)
            assert sorted(rendered_lines) == sorted({row + 1 for row, _ in changed})
            assert len(changed) < 3 * grid.row_count
            checked += 1
        assert checked >= 3


@pilot_test
async def test_a_text_cell_is_rendered_as_datatable_renders_it():
    """The short way for one-line Text cells, against DataTable._render_cell: every cell
    of the header and the rows, with and without cursor and hover, as wide as its column,
    wider, and narrower than its text (cropped)."""
    app = make_app("simple_nn")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await open_leaf(pilot, "linear1.weight")
        await pilot.press("+")  # cells with deltas: several spans and styles
        await settle(pilot)
        grid = app.query_one(ElementGrid)
        base_style = grid.rich_style
        grid._pseudo_class_state = grid.get_pseudo_class_state()
        compared = 0
        for row in range(-1, grid.row_count):
            for column, spec in enumerate(grid.ordered_columns):
                width = spec.get_render_width(grid)
                for w in (width, width + 4, 4, 3):
                    for cursor in (False, True):
                        for hover in (False, True):
                            grid._clear_caches()  # DataTable's cell cache is not keyed by width
                            ours = grid._render_text_cell(row, column, base_style, w, cursor, hover)
                            theirs = DataTable._render_cell(grid, row, column, base_style, w, cursor, hover)
                            assert ours == theirs, (row, column, w, cursor, hover)
                            assert [s.style.meta for s in ours[0]] == [s.style.meta for s in theirs[0]]
                            compared += 1
        assert compared == 7 * 3 * 4 * 4
        # anything else goes DataTable's way: a two-character-wide cell has no room inside its padding
        assert grid._render_text_cell(0, 0, base_style, 2, False, False) is None
