"""SVG snapshots of the teaching screens and sections (issue 4) at 100x30.

Deterministic as the other snapshot tests: fixed theme, no blinking cursor,
TEXTUAL_ANIMATIONS=none, every worker waited for before the picture.
"""

from __future__ import annotations

import os

from ui_support import make_app, ready, scroll_inspector, select_leaf, settle

from backprop_tui.ui.widgets.graph_view import GraphView

os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
SIZE = (100, 30)


async def show_teaching(pilot, name: str) -> None:
    """Highlight `name` in the graph and scroll the inspector to its teaching sections."""
    app = pilot.app
    app.query_one(GraphView).show_node(name)
    await settle(pilot)
    await scroll_inspector(pilot)


def test_inspector_contributions_and_paths(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await show_teaching(pilot, "x")

    assert snap_compare(make_app("gradient_accumulation"), terminal_size=SIZE, run_before=run_before)


def test_inspector_flags_and_markers(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await show_teaching(pilot, "H")

    assert snap_compare(make_app("dead_relu"), terminal_size=SIZE, run_before=run_before)


def test_inspector_per_sample(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await select_leaf(pilot, "hidden.weight")
        await settle(pilot)
        await scroll_inspector(pilot, end=True)  # the per-sample section comes last

    assert snap_compare(make_app("dead_relu"), terminal_size=SIZE, run_before=run_before)


def test_finite_differences_screen(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("f")
        await settle(pilot, rounds=3)
        await pilot.pause(0.1)  # the table sizes its columns once its rows are in: let it draw them

    assert snap_compare(make_app("dead_relu"), terminal_size=SIZE, run_before=run_before)


def test_your_gradient_wrong(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        pilot.app.query_one(GraphView).show_node("w")
        await settle(pilot)
        await pilot.press("y", *"40", "enter")
        await pilot.pause()

    assert snap_compare(make_app("linear_regression"), terminal_size=SIZE, run_before=run_before)


def test_step_through_backward(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("b")
        await settle(pilot)
        await pilot.press("right", "right", "right")
        await settle(pilot)

    assert snap_compare(make_app("linear_regression"), terminal_size=SIZE, run_before=run_before)


def test_step_through_accumulation(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("b")
        await settle(pilot)
        await pilot.press("right")
        await settle(pilot)

    assert snap_compare(make_app("gradient_accumulation"), terminal_size=SIZE, run_before=run_before)


def test_step_through_forward(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("B")
        await settle(pilot)
        await pilot.press("end")
        await settle(pilot)

    assert snap_compare(make_app("scalar_chain"), terminal_size=SIZE, run_before=run_before)


def test_whole_tensor_grad(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        pilot.app.query_one(GraphView).show_node("A1")
        await settle(pilot)
        await pilot.press("v", "t")
        await pilot.pause()

    assert snap_compare(make_app("simple_nn"), terminal_size=SIZE, run_before=run_before)
