"""Helpers shared by the UI tests: start the app, wait for the engine, read the screen."""

from __future__ import annotations

import asyncio
import functools
import re

from rich.console import Group
from rich.text import Text

from backprop_tui.ui import BackpropApp
from backprop_tui.ui.widgets.graph_view import GraphView
from backprop_tui.ui.widgets.weight_editor import ElementGrid, WeightEditor


CLEAR = ("end", "ctrl+u")  # keys that empty a Textual Input


def pilot_test(fn):
    """Run an async test body with asyncio.run (the project has no pytest async plugin)."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return run


def make_app(preset: str) -> BackpropApp:
    # fixed theme, no blinking cursor: the same pixels on every run
    return BackpropApp(preset, cursor_blink=False, theme="textual-dark")


async def ready(pilot) -> None:
    """Wait for the loader thread (torch import + first computation) and its message."""
    app = pilot.app
    for _ in range(600):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not app.preset_pending:
            break
        await pilot.pause(0.05)
    assert not app.preset_pending, "the preset did not load within 30 s"
    await pilot.pause()
    await app.workers.wait_for_complete()  # the inspector's analyses of big presets
    await pilot.pause()


async def settle(pilot, rounds: int = 2) -> None:
    """Wait for every worker and the messages they posted, `rounds` times over (a message
    handled in one round may start the worker the next one waits for)."""
    for _ in range(rounds):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def scroll_inspector(pilot, end: bool = False) -> None:
    """Scroll the inspector to the top of its teaching sections (or to its end), as a
    reader would, and wait for the sections it computes once they come into view."""
    from backprop_tui.ui.widgets.inspector import Inspector

    inspector = pilot.app.query_one(Inspector)
    for _ in range(3):  # a section computed in view makes the panel taller: scroll again
        if end:
            inspector.scroll_end(animate=False)
        else:
            inspector.scroll_to_widget(inspector.query_one("#inspector-teaching"), animate=False, top=True)
        await settle(pilot)


def count_repaints(view: GraphView) -> list[int]:
    """The rows the graph view asks Textual to repaint from now on (the list fills as it does)."""
    repainted: list[int] = []
    original = view.refresh_lines

    def counting(y_start: int, line_count: int = 1) -> None:
        repainted.extend(range(y_start, y_start + line_count))
        original(y_start, line_count)

    view.refresh_lines = counting
    return repainted


def plain(renderable) -> str:
    if isinstance(renderable, Text):
        return renderable.plain
    if isinstance(renderable, Group):
        return "\n".join(plain(r) for r in renderable.renderables)
    return str(renderable)


def static_text(app, selector: str) -> str:
    return plain(app.query_one(selector).content)


def tree_label(app, name: str) -> str:
    """The graph's label of the full entry of `name`, as drawn at the panel's width."""
    view = app.query_one(GraphView)
    index = view.row_of(name)
    assert index is not None, f"{name} has no row on screen"
    return view.drawn_label(index).plain


def grid_cells(app) -> list[tuple[str, str, str]]:
    """(index, value, grad) of every row of the weight grid, read from the rows as drawn
    (columns are at least two blanks apart; a cell holds at most one blank in a row)."""
    grid = app.query_one(ElementGrid)
    return [tuple(re.split(r" {2,}", grid.row_text(row).strip())) for row in range(grid.row_count)]


async def select_leaf(pilot, name: str) -> None:
    """With the keyboard: tab to the leaf list, arrow down to `name`, tab to its grid."""
    app = pilot.app
    await pilot.press("tab")
    leaves = [n.name for n in app.session.snapshot.leaves]
    await pilot.press("home", *["down"] * leaves.index(name))
    await pilot.press("tab")
    assert app.query_one(WeightEditor).leaf == name
    assert isinstance(app.focused, ElementGrid)


async def open_leaf(pilot, name: str) -> ElementGrid:
    """Show leaf `name` in the weight grid and focus the grid (directly, not with keys as
    `select_leaf`), wait for the inspector, and return the grid."""
    pilot.app.query_one(WeightEditor).select_leaf(name, focus_grid=True)
    await settle(pilot)
    return pilot.app.query_one(ElementGrid)


async def type_value(pilot, text: str) -> None:
    """Enter on the grid; the input opens with the value selected, so backspace clears it."""
    await pilot.press("enter")
    await pilot.press("backspace", *list(text), "enter")
    await pilot.pause()
