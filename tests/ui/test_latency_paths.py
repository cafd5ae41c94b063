"""What an edit costs the UI thread: only the changed labels, the analyses in a worker.

Not timed (timings belong in benchmarks/): these tests count what the edit path does.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from backprop_tui.engine.analysis.contributions import node_contributions
from backprop_tui.engine.analysis.local import chain_rule
from backprop_tui.ui.teaching import explain as explaining
from backprop_tui.ui.widgets import inspector as inspector_module
from backprop_tui.ui.format import fmt
from backprop_tui.ui.graph_labels import NodeLabel
from backprop_tui.ui.teaching.sections import DEFERRED
from backprop_tui.ui.widgets.graph_view import GraphView
from backprop_tui.ui.widgets.weight_editor import ElementGrid, WeightEditor

from ui_support import (count_repaints, grid_cells, make_app, open_leaf, pilot_test, ready, scroll_inspector,
                        select_leaf, settle, static_text)

SIZE = (120, 40)


def _differs(a, b) -> bool:
    if a is None or b is None:
        return (a is None) != (b is None)
    return a.shape != b.shape or a.tobytes() != b.tobytes()


def _changed_nodes(new, old) -> set[str]:
    return {
        n.name for n in new.nodes
        if n.name not in old or _differs(n.value, old.node(n.name).value) or _differs(n.grad, old.node(n.name).grad)
    }


@pilot_test
async def test_an_edit_repaints_only_the_rows_of_the_nodes_it_changed():
    app = make_app("simple_nn")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        view = app.query_one(GraphView)
        await open_leaf(pilot, "linear3.bias")
        last_changed: set[str] = set()
        for _ in range(2):
            snap0 = app.session.snapshot
            flags0 = view.flagged
            before = view.lines()
            repainted = count_repaints(view)
            await pilot.press("+")
            await settle(pilot)
            snap1, previous = app.session.snapshot, app.session.previous
            assert previous is snap0
            changed = _changed_nodes(snap1, snap0)
            # changed by this edit, or marked with the last edit's deltas (to be cleared),
            # or flagged or unflagged by the analyses that followed it
            expected = changed | last_changed | (flags0 ^ view.flagged)
            last_changed = changed
            rows = {view.row_of(name) for name in expected}
            assert len(expected) < len(snap1.nodes), "the inputs and targets did not change"
            drawn_changed = {i for i, (a, b) in enumerate(zip(before, view.lines())) if a != b}
            assert drawn_changed <= set(repainted) <= rows
            # every label is the one a fresh label of the session's snapshot makes
            for node in snap1.nodes:
                before_node = previous.node(node.name) if node.name in previous else None
                fresh = NodeLabel(node, before_node, node.name in view.flagged).full().plain
                assert view.full_label(node.name).plain == fresh, node.name


async def _chain_rule_after_edits(monkeypatch, preset: str, leaf: str, edits: int = 1,
                                  on_session_pass: list[bool] | None = None) -> list[threading.Thread]:
    """Press + on `leaf`'s first element `edits` times; check the chain rule shown; return
    the threads that computed the chain rule for each edit (and, in `on_session_pass`,
    whether it read the session's own forward and backward pass)."""
    threads: list[threading.Thread] = []
    original = explaining.explain

    def recording(state, name, *rest):
        threads.append(threading.current_thread())
        if on_session_pass is not None:
            on_session_pass.append(any(live.graph is app.session.graph for live in state.lives.values()))
        return original(state, name, *rest)

    monkeypatch.setattr(explaining, "explain", recording)
    app = make_app(preset)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await open_leaf(pilot, leaf)
        threads.clear()
        if on_session_pass is not None:
            on_session_pass.clear()
        before = app.session.snapshot.node(leaf).value.reshape(-1)[0]
        step = app.query_one(WeightEditor).step  # each preset's own nudge step
        for _ in range(edits):
            await pilot.press("+")
            await settle(pilot)
        name = app.inspected
        assert name == leaf
        expected = chain_rule(app.session, name).head  # the grad itself is the matrix drawn above it
        assert f"chain rule  {expected}: the grad shown above" in static_text(app, "#inspector-body")
        # the contributions computed with it, when on screen, are those of the edited values
        part = node_contributions(app.session, name).contributions[0].value
        teaching = static_text(app, "#inspector-teaching")
        assert f")  {fmt(float(part.reshape(-1)[0]))}\n" in teaching or DEFERRED in teaching
        # the shown value is the edited one
        assert np.isclose(app.session.snapshot.node(name).value.reshape(-1)[0], before + step * edits,
                          rtol=1e-6, atol=1e-6)
    return threads


@pilot_test
async def test_a_small_preset_is_analysed_in_the_edit_itself(monkeypatch):
    # a few milliseconds of analyses: one frame shows the edit complete (the budget is
    # raised so that a loaded test machine does not push them into the worker)
    monkeypatch.setattr(inspector_module, "IN_EDIT_BUDGET", 60.0)
    shared: list[bool] = []
    threads = await _chain_rule_after_edits(monkeypatch, "simple_nn", "linear1.weight", on_session_pass=shared)
    assert threads and all(t is threading.main_thread() for t in threads)
    assert shared and all(shared)  # and on the session's own pass, not a pass of their own


@pilot_test
async def test_a_big_preset_is_analysed_in_a_worker_while_that_is_slow(monkeypatch):
    monkeypatch.setattr(inspector_module, "IN_EDIT_BUDGET", 0.0)  # every analysis counts as slow
    shared: list[bool] = []
    threads = await _chain_rule_after_edits(monkeypatch, "mlp_784", "linear1.weight", edits=2, on_session_pass=shared)
    assert len(threads) == 2 and all(t is not threading.main_thread() for t in threads)
    assert shared == [False, False]  # the next edit writes into the session's pass: a worker runs its own


@pilot_test
async def test_a_node_analysed_fast_in_a_worker_is_next_analysed_in_the_edit(monkeypatch):
    monkeypatch.setattr(inspector_module, "IN_EDIT_BUDGET", 60.0)  # every analysis counts as fast
    threads = await _chain_rule_after_edits(monkeypatch, "mlp_784", "linear1.weight", edits=2)
    # selecting the leaf: unknown cost on a big preset, a worker; each edit after: in the edit
    assert len(threads) == 2 and all(t is threading.main_thread() for t in threads)


@pilot_test
async def test_an_edit_repaints_only_the_grid_rows_whose_numbers_changed(monkeypatch):
    app = make_app("simple_nn")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await open_leaf(pilot, "linear3.weight")
        await pilot.press("+")  # the first edit brings the Δ markers: the columns widen
        await settle(pilot)
        painted: list[int] = []
        render_line = ElementGrid.render_line

        def counting(self, y):
            painted.append(y)
            return render_line(self, y)

        monkeypatch.setattr(ElementGrid, "render_line", counting)
        checked = 0
        for key in ("+", "-", "down", "+", "-"):
            snapshot = app.session.snapshot
            painted.clear()
            await pilot.press(key)
            await settle(pilot)
            if key == "down":  # the cursor moved: its two rows
                assert sorted(painted) == [1, 2]
                continue
            node, before = app.session.snapshot.node("linear3.weight"), snapshot.node("linear3.weight")
            changed = {int(i) + 1 for i in np.flatnonzero((node.value != before.value) | (node.grad != before.grad))}
            assert changed
            if 0 in painted:
                continue  # a column widened: every line is drawn again
            assert set(painted) == changed
            checked += 1
        assert checked >= 2
        # what is drawn is what a freshly shown page draws
        shown = grid_cells(app)
        await open_leaf(pilot, "linear3.bias")
        await open_leaf(pilot, "linear3.weight")
        assert grid_cells(app) == shown


@pilot_test
async def test_a_leaf_far_from_the_output_gets_no_multiplied_out_paths():
    # deep_chain: x reaches J through every one of its 501 steps; multiplying out 500
    # local Jacobians on every edit is what the step-through is for
    app = make_app("deep_chain")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await open_leaf(pilot, "x")
        steps = len(app.session.preset.steps)  # 500 in the chain, and J
        text = static_text(app, "#inspector-teaching")
        assert f"x reaches J through {steps} steps" in text
        assert "their products add up to" not in text
    # a short chain still lists its paths, with their products
    app = make_app("scalar_chain")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await open_leaf(pilot, "x")
        assert "their products add up to" in static_text(app, "#inspector-teaching")


@pilot_test
async def test_a_page_of_500_rows_shows_each_row_as_it_scrolls_into_view():
    app = make_app("mlp_784")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        grid = await open_leaf(pilot, "linear1.weight")
        assert grid.row_count == 500 and grid.size.height < 20
        await pilot.press("+")  # every grad of the page changes; the bottom rows are off screen
        await settle(pilot)
        grad = app.session.snapshot.node("linear1.weight").grad.reshape(-1)
        grid.move_cursor(499)  # scrolls the last row into view
        await settle(pilot)
        last = grid.render_line(grid.size.height - 1).text
        assert last.split()[0] == "[0,499]"
        shown = [word for word in last.split() if not word.startswith("Δ")][2]
        assert float(shown) == pytest.approx(float(grad[499]), rel=1e-2, abs=1e-12)


@pilot_test
async def test_the_inspector_stays_whole_when_an_edit_follows_a_resize():
    # the inspector skips layout passes while a section keeps its height; a resize
    # changes the width its heights were measured at, and must not cut text off
    from backprop_tui.ui.widgets.text_block import TextBlock

    app = make_app("simple_nn")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await open_leaf(pilot, "linear1.weight")
        for size, key in (((120, 40), "+"), ((84, 40), "-"), ((84, 40), "+"), ((120, 40), "-")):
            await pilot.resize_terminal(*size)
            await settle(pilot)
            await pilot.press(key)
            await settle(pilot)
            for selector in ("#inspector-body", "#inspector-teaching", "#inspector-details"):
                static = app.query_one(selector, TextBlock)
                needed = static.get_content_height(static.size, static.size, static.size.width)
                assert static.size.height >= needed, (size, selector)


def test_the_inspector_still_flags_nan_when_it_skips_the_check_for_finite_states():
    from backprop_tui.engine import Session
    from backprop_tui.engine.analysis.custom import custom_preset
    from backprop_tui.engine.analysis.live import FrozenState
    from backprop_tui.ui.teaching.sections import SnapshotCache, compute_flags

    s = Session(custom_preset("log(x) * y", {"x": -1.0, "y": 2.0}))
    by_node = compute_flags(FrozenState.of(s), s.snapshot, SnapshotCache())
    assert any("nan or inf" in reason for reason in by_node["f"])


@pilot_test
async def test_an_edit_leaves_the_sections_below_the_panels_edge_until_they_are_scrolled_into_view(monkeypatch):
    # at 100x36 the paths of X[0,0] sit below the inspector's edge: an edit does not
    # compute them (about 2 ms) until the reader scrolls there; then they are there, live
    from backprop_tui.engine.analysis import paths as paths_module
    from backprop_tui.engine.analysis.live import FrozenState
    from backprop_tui.ui.teaching.sections import DEFERRED

    calls = []
    real_paths = paths_module.paths
    monkeypatch.setattr(paths_module, "paths", lambda *a, **k: calls.append(a[1]) or real_paths(*a, **k))

    def expected_summary() -> str:
        return real_paths(FrozenState.of(app.session), "X", (0, 0)).summary

    app = make_app("simple_nn")
    async with app.run_test(size=(100, 36)) as pilot:
        await ready(pilot)
        await select_leaf(pilot, "X")
        await pilot.press("g", "down", "up")  # X requires grad (it has paths to J); a move shows them all
        await settle(pilot)
        assert calls and expected_summary() in static_text(app, "#inspector-teaching")  # a node newly shown: all of it
        await pilot.press("plus")  # the first edit grows the value block (the changed element)
        await settle(pilot)
        calls.clear()
        await pilot.press("minus")
        await settle(pilot)
        assert calls == []
        teaching = static_text(app, "#inspector-teaching")
        assert DEFERRED in teaching and "Paths to J" not in teaching
        assert "Contributions" in teaching  # on screen: computed
        inspector = app.query_one(inspector_module.Inspector)
        rows, width = inspector._teaching_visible()
        block = inspector.query_one("#inspector-teaching")
        lines = block._lines
        placeholder = next(i for i, line in enumerate(lines) if line.plain == DEFERRED)
        assert block.height_for(lines[:placeholder], width) >= rows + 1  # below the edge (+1: the blank line)

        await scroll_inspector(pilot)
        assert calls == ["X"]
        assert expected_summary() in static_text(app, "#inspector-teaching")
        await pilot.press("plus")  # in view now: every edit recomputes them
        await settle(pilot)
        assert calls == ["X", "X"] and expected_summary() in static_text(app, "#inspector-teaching")


@pilot_test
async def test_a_taller_terminal_computes_the_sections_an_edit_left_below_the_edge():
    app = make_app("simple_nn")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await select_leaf(pilot, "X")
        await settle(pilot)
        for key in ("plus", "minus"):
            await pilot.press(key)
            await settle(pilot)
        assert "Paths to J" not in static_text(app, "#inspector-teaching")
        await pilot.resize_terminal(120, 60)
        await settle(pilot, rounds=3)
        assert "Paths to J" in static_text(app, "#inspector-teaching")
