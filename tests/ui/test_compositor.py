"""What the explorer writes to the terminal: the OccludingCompositor's partial updates and
the frames ExplorerScreen.paint_now draws in an edit's handler.

Snapshot tests cannot see either (a screenshot renders the whole screen), so here every
update the screen writes goes to a terminal emulator (pyte), as it would to a real one:
- each partial update is also drawn from the same dirty regions by Textual's Compositor,
  into a second terminal, and the two must show the same cells after every frame (the
  bytes differ: Textual also writes empty pieces of the widgets beside a dirty region);
- after every step of the session, the terminal must show what a full render of the
  screen shows, so no change was left undrawn.
"""

from __future__ import annotations

import pyte
import pytest
from textual._compositor import Compositor, LayoutUpdate
from textual.widget import Widget

from backprop_tui.ui.app import BackpropApp
from backprop_tui.ui.compositor import OccludingCompositor
from backprop_tui.ui.widgets.graph_tree import GraphTree
from backprop_tui.ui.widgets.inspector import Inspector
from ui_support import make_app, open_leaf, pilot_test, ready, select_leaf, settle, type_value


def cells(terminal: pyte.Screen) -> list[list[tuple]]:
    """Every cell: character, colours, bold, italics, underline, reverse."""
    return [
        [(c.data, c.fg, c.bg, c.bold, c.italics, c.underscore, c.reverse) for c in (row[x] for x in range(terminal.columns))]
        for row in (terminal.buffer[y] for y in range(terminal.lines))
    ]


class Terminals:
    """Wraps the screen's compositor: every update goes to `shown`; every partial update
    is also drawn Textual's way into `textual`.

    Textual's is drawn second, from the same dirty regions, so that a widget our update
    left unrendered (stale cached lines) would show as a difference."""

    def __init__(self, app, monkeypatch) -> None:
        self.app = app
        self.partial_updates = 0
        self.differences: list[int] = []  # the partial updates after which the terminals differ
        self.shown, self.textual = (pyte.Screen(*app.size) for _ in range(2))
        self.rendered = {"ours": 0, "textual": 0}  # widget renders, summed over the frames
        self._counting: str | None = None
        compositor = app.screen._compositor
        assert isinstance(compositor, OccludingCompositor)
        original_lines = Widget.render_lines
        original_update = compositor.render_update

        def render_lines(widget, crop):
            if self._counting:
                self.rendered[self._counting] += 1
            return original_lines(widget, crop)

        def render_partial_update():
            regions = set(compositor._dirty_regions)
            self._counting = "ours"
            ours = OccludingCompositor.render_partial_update(compositor)
            compositor._dirty_regions = set(regions)
            self._counting = "textual"
            theirs = Compositor.render_partial_update(compositor)
            self._counting = None
            if theirs is not None:
                self.write(self.textual, theirs)
            return ours

        def render_update(*args, **kwargs):
            update = original_update(*args, **kwargs)
            if update is not None:
                self.write(self.shown, update)
                if not isinstance(update, LayoutUpdate):  # a full update goes to both
                    self.partial_updates += 1
                    if cells(self.shown) != cells(self.textual):
                        self.differences.append(self.partial_updates)
                else:
                    self.write(self.textual, update)
            return update

        monkeypatch.setattr(Widget, "render_lines", render_lines)
        monkeypatch.setattr(compositor, "render_partial_update", render_partial_update)
        monkeypatch.setattr(compositor, "render_update", render_update)
        app.screen.refresh()  # a full update first: both terminals start from the whole screen

    def write(self, terminal: pyte.Screen, update) -> None:
        pyte.Stream(terminal).feed(update.render_segments(self.app.console))

    def full_render(self) -> pyte.Screen:
        terminal = pyte.Screen(*self.app.size)
        compositor = self.app.screen._compositor
        self.write(terminal, LayoutUpdate([[strip] for strip in compositor.render_strips()], compositor.size.region))
        return terminal


@pytest.mark.parametrize("preset", ["simple_nn", "scalar_chain"])
@pilot_test
async def test_every_update_draws_what_textual_draws_and_leaves_the_whole_screen(preset, monkeypatch):
    app = make_app(preset)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        terminals = Terminals(app, monkeypatch)
        leaf = app.session.snapshot.leaves[0].name

        async def focus(widget_type) -> None:
            app.query_one(widget_type).focus()

        steps = [
            lambda: select_leaf(pilot, leaf),
            *[lambda key=key: pilot.press(key) for key in ["+", "+", "-", "down", "+", "up", "-"]],  # nudges, cursor
            lambda: type_value(pilot, "0.25"),
            lambda: pilot.press("ctrl+z", "ctrl+y"),  # undo and redo
            lambda: focus(Inspector),
            *[lambda key=key: pilot.press(key) for key in ["pagedown", "+", "end", "-", "home"]],  # scrolling
            lambda: focus(GraphTree),
            lambda: pilot.press("down", "down", "space", "space", "enter", "up"),  # fold, open, inspect
            lambda: open_leaf(pilot, leaf),
            lambda: pilot.press("+"),
        ]
        for number, step in enumerate(steps):
            await step()
            await settle(pilot)
            assert cells(terminals.shown) == cells(terminals.full_render()), f"after step {number}"

        assert terminals.partial_updates >= 15
        assert terminals.differences == []
        # and it did draw less: no container, footer or unchanged widget
        assert terminals.rendered["ours"] < terminals.rendered["textual"] / 2


@pilot_test
async def test_a_nudges_frame_is_drawn_in_its_handler_and_only_there(monkeypatch):
    frames: list[bool] = []  # for each frame: whether it was drawn inside on_nudge
    in_nudge = [False]
    original_nudge = BackpropApp.on_nudge

    def on_nudge(app, message):
        in_nudge[0] = True
        try:
            return original_nudge(app, message)
        finally:
            in_nudge[0] = False

    monkeypatch.setattr(BackpropApp, "on_nudge", on_nudge)
    app = make_app("simple_nn")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await open_leaf(pilot, "linear1.weight")
        # the first edit adds a delta to the header's output, which widens it: a layout,
        # so Textual draws that frame its own way, after the handler
        await pilot.press("+")
        await settle(pilot)
        compositor = app.screen._compositor
        original_update = compositor.render_update

        def render_update(*args, **kwargs):
            update = original_update(*args, **kwargs)
            if update is not None:
                frames.append(in_nudge[0])
            return update

        monkeypatch.setattr(compositor, "render_update", render_update)
        for key in ["+", "-", "+", "minus"]:
            await pilot.press(key)
            await settle(pilot)
        assert frames == [True] * 4  # one frame per nudge, drawn in its handler
        assert app.session.snapshot.node("linear1.weight").value[0, 0] == pytest.approx(-0.9)  # -1 + 0.1, then + - + -
