"""The explorer's compositor draws what Textual's own would, on every partial update.

Snapshot tests cannot see a partial update (a screenshot renders the whole screen), so
each frame of a session is drawn twice here: by the OccludingCompositor, then from the
same dirty regions by Textual's Compositor. Each output goes to a terminal emulator
(pyte) of its own, and the two terminals must show the same characters in the same
colours and attributes after every frame. (The bytes differ: Textual also writes empty
pieces of widgets beside a dirty region, a cursor move and nothing else.)
"""

from __future__ import annotations

import pyte
import pytest
from textual._compositor import Compositor
from textual.widget import Widget

from backprop_tui.ui.compositor import OccludingCompositor
from backprop_tui.ui.widgets.graph_tree import GraphTree
from backprop_tui.ui.widgets.inspector import Inspector

from ui_support import make_app, open_leaf, pilot_test, ready, select_leaf, settle, type_value


class Comparison:
    """Wraps the screen's compositor: every partial update is also drawn Textual's way.

    Textual's is drawn second, from the same dirty regions, so that a widget our update
    left unrendered (stale cached lines) would show as a difference."""

    def __init__(self, app, monkeypatch) -> None:
        self.app = app
        self.frames = 0
        self.differences: list[int] = []  # the frames after which the terminals differ
        self.terminals = {side: pyte.Screen(*app.size) for side in ("ours", "textual")}
        self.rendered = {"ours": 0, "textual": 0}  # widget renders, summed over the frames
        self._counting: str | None = None
        compositor = app.screen._compositor
        assert isinstance(compositor, OccludingCompositor)
        original_lines = Widget.render_lines

        def render_lines(widget, crop):
            if self._counting:
                self.rendered[self._counting] += 1
            return original_lines(widget, crop)

        def compare() -> object:
            regions = set(compositor._dirty_regions)
            self._counting = "ours"
            ours = OccludingCompositor.render_partial_update(compositor)
            compositor._dirty_regions = set(regions)
            self._counting = "textual"
            theirs = Compositor.render_partial_update(compositor)
            self._counting = None
            if ours is not None or theirs is not None:
                self.frames += 1
                for side, update in (("ours", ours), ("textual", theirs)):
                    if update is not None:
                        pyte.Stream(self.terminals[side]).feed(update.render_segments(app.console))
                if self.shown("ours") != self.shown("textual"):
                    self.differences.append(self.frames)
            return ours

        monkeypatch.setattr(Widget, "render_lines", render_lines)
        monkeypatch.setattr(compositor, "render_partial_update", compare)

    def shown(self, side: str) -> list[list[tuple]]:
        """Every cell of that terminal: character, colours, bold, italics, underline, reverse."""
        buffer = self.terminals[side].buffer
        width, height = self.app.size
        return [
            [(c.data, c.fg, c.bg, c.bold, c.italics, c.underscore, c.reverse) for c in (buffer[y][x] for x in range(width))]
            for y in range(height)
        ]


@pytest.mark.parametrize("preset", ["simple_nn", "scalar_chain"])
@pilot_test
async def test_every_partial_update_writes_what_textuals_compositor_writes(preset, monkeypatch):
    app = make_app(preset)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        comparison = Comparison(app, monkeypatch)
        leaf = app.session.snapshot.leaves[0].name
        await select_leaf(pilot, leaf)
        for key in ["+", "+", "-", "down", "+", "up", "-"]:  # nudges and cursor moves
            await pilot.press(key)
            await settle(pilot)
        await type_value(pilot, "0.25")
        await settle(pilot)
        await pilot.press("ctrl+z", "ctrl+y")  # undo and redo
        await settle(pilot)
        inspector = app.query_one(Inspector)
        inspector.focus()
        await pilot.press("pagedown", "+", "end", "-", "home")  # scrolled panels, scrollbars
        await settle(pilot)
        app.query_one(GraphTree).focus()
        await pilot.press("down", "down", "space", "space", "enter", "up")  # fold, open, inspect
        await settle(pilot)
        await open_leaf(pilot, leaf)
        await pilot.press("+")
        await settle(pilot)

        assert comparison.frames >= 15
        assert comparison.differences == []
        # and it did draw less: no container, footer or unchanged widget
        assert comparison.rendered["ours"] < comparison.rendered["textual"] / 2
