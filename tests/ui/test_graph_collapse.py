"""The graph panel folds long chains (deep_chain: 250 tanh layers, 500 steps) and opens them
on demand: the numbers drawn on the rows come from the session's snapshot, and agree with a
separately written torch computation of the same chain."""

from __future__ import annotations

import torch
from ui_support import count_repaints, make_app, pilot_test, ready, select_leaf, settle, static_text, tree_label

from backprop_tui.engine.numbers import fmt
from backprop_tui.ui.format import scalar_delta, signed
from backprop_tui.ui.graph_rows import CHAIN_PAGE
from backprop_tui.ui.widgets.graph_view import GraphView

SIZE = (100, 30)
LAYERS = 250
# below J: h250, then a250, h249, a249, ..., h1, a1 (499 links at one level under h250)
LINKS = [name for k in range(LAYERS, 0, -1) for name in (f"a{k}", f"h{k - 1}")][:-1]


def torch_chain(x: float, w: float, b: float) -> dict[str, tuple[float, float]]:
    """deep_chain written out by hand: every step's value and grad (float32, like the preset)."""
    x_t, w_t, b_t = (torch.tensor(v, requires_grad=True) for v in (x, w, b))
    steps: dict[str, torch.Tensor] = {}
    h = x_t
    for k in range(1, LAYERS + 1):
        a = w_t * h + b_t
        h = torch.tanh(a)
        steps[f"a{k}"], steps[f"h{k}"] = a, h
    for t in steps.values():
        t.retain_grad()
    J = (h - 1.0) ** 2 / 2
    J.backward()
    return {name: (t.item(), t.grad.item()) for name, t in steps.items()} | {"x": (x, x_t.grad.item())}


def gap_rows(view: GraphView) -> list[int]:
    return [i for i, line in enumerate(view.lines()) if "more step" in line]


def shown(view: GraphView) -> list[str]:
    """The chain's links that have a row, in order."""
    return [name for name in LINKS if view.row_of(name) is not None]


def assert_rows_show_the_session(app, view: GraphView) -> int:
    """Every node with a row draws the session's value and grad, with its deltas."""
    snapshot, previous = app.session.snapshot, app.session.previous
    checked = 0
    for node in snapshot.nodes:
        index = view.row_of(node.name)
        if index is None:
            continue
        label = view.drawn_label(index).plain
        value = fmt(node.scalar())
        before = previous.node(node.name) if previous is not None else None
        if before is not None and before.scalar() != node.scalar():
            # the change as the app words it: float32's noise rounded off (2.1 - 2 is 0.1)
            value += f" Δ{signed(scalar_delta(node.value, before.value))}"
        assert f"  {value}  " in label, (node.name, label, value)
        if node.grad is None:
            assert label.endswith("no grad"), label
        else:
            assert f"grad {signed(node.scalar_grad())}" in label, (node.name, label)
        checked += 1
    return checked


@pilot_test
async def test_the_folded_row_counts_the_hidden_steps():
    app = make_app("deep_chain")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        view = app.query_one(GraphView)
        lines = view.lines()
        assert len(lines) == 19  # not 1,500
        (gap,) = gap_rows(view)
        assert lines[gap] == f"│ ├ … 493 more steps (enter: open {CHAIN_PAGE})  h248 … h2"
        assert shown(view) == ["a250", "h249", "a249", "a2", "h1", "a1"]
        # the links sit at one level under h250, in the order backprop walks them; leaves
        # are shown in full where first reached, as references elsewhere
        heads = []
        for i, line in enumerate(lines):
            label = view.drawn_label(i).plain
            heads.append(line[:len(line) - len(label)] + label.split("  ")[0])  # guides, arrow, name, detail
        assert heads == [
            "▼ J = (h250 - y)**2 / 2", "├ ▼ h250 = tanh(a250)",
            "│ ├ ▼ a250 = w * h249 + b", "│ │ ├ w param", "│ │ └ b param",
            "│ ├ h249 = tanh(a249)",
            "│ ├ ▼ a249 = w * h248 + b", "│ │ ├ ↪ w", "│ │ └ ↪ b",
            "│ ├ … 493 more steps (enter: open 50)",
            "│ ├ ▼ a2 = w * h1 + b", "│ │ ├ ↪ w", "│ │ └ ↪ b",
            "│ ├ h1 = tanh(a1)",
            "│ └ ▼ a1 = w * x + b", "│   ├ ↪ w", "│   ├ x input", "│   └ ↪ b",
            "└ y target"]
        expected = torch_chain(1.0, 1.0, 0.0)
        snapshot = app.session.snapshot
        for name in ("a250", "h1", "a1", "x"):
            value, grad = expected[name]
            node = snapshot.node(name)
            assert node.scalar() == value and node.scalar_grad() == grad, name
            assert f"  {fmt(value)}  grad {signed(grad)}" in tree_label(app, name)
        assert assert_rows_show_the_session(app, view) == 12


@pilot_test
async def test_enter_on_the_folded_row_opens_the_next_page_in_place():
    app = make_app("deep_chain")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        view = app.query_one(GraphView)
        (gap,) = gap_rows(view)
        view.move_cursor(gap)
        await pilot.press("enter")
        await pilot.pause()
        opened = LINKS[3:3 + CHAIN_PAGE]
        assert opened[0] == "h248" and opened[-1] == "a224"
        # in place: after a249, in order, at the same level
        assert shown(view) == ["a250", "h249", "a249", *opened, "a2", "h1", "a1"]
        assert all(view.row_text(view.row_of(name)).startswith("│ ├ ") for name in opened)
        (gap,) = gap_rows(view)
        assert view.lines()[gap].startswith("│ ├ … 443 more steps")
        # the cursor is on the first opened step, and the inspector follows it
        assert view.highlighted_name == "h248"
        await settle(pilot)
        assert "h248" in static_text(app, "#inspector-body").splitlines()[0]
        snapshot, expected = app.session.snapshot, torch_chain(1.0, 1.0, 0.0)
        for name in ("h248", "a240", "a224"):
            value, grad = expected[name]
            assert snapshot.node(name).scalar() == value
            assert f"  {fmt(value)}  grad {signed(grad)}" in tree_label(app, name)
        # the rest, page by page (the space bar as well): the row goes away when nothing is left
        while gap_rows(view):
            view.move_cursor(gap_rows(view)[0])
            await pilot.press("space")
            await pilot.pause()
        assert shown(view) == LINKS
        # J, h250, its 499 links, w and b under each of the 250 a's (in full once, then
        # as references), x under a1, y
        assert len(view.lines()) == 1 + 1 + len(LINKS) + 2 * LAYERS + 1 + 1 == 1003
        assert assert_rows_show_the_session(app, view) == 505


@pilot_test
async def test_show_node_opens_the_fold_that_hides_the_node_and_highlights_it():
    app = make_app("deep_chain")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        view = app.query_one(GraphView)
        assert view.row_of("a100") is None
        view.show_node("a100")
        await pilot.pause()
        assert view.cursor == view.row_of("a100") and view.highlighted_name == "a100"
        # two steps of context on either side; the rest stays folded, above and below
        i = LINKS.index("a100")
        assert shown(view)[3:-3] == LINKS[i - 2:i + 3]
        lines = view.lines()
        above, below = (lines[g] for g in gap_rows(view))
        assert f"… {i - 2 - 3} more steps" in above and f"… {len(LINKS) - 3 - (i + 3)} more steps" in below
        value, grad = torch_chain(1.0, 1.0, 0.0)["a100"]
        assert tree_label(app, "a100") == f"a100 = w * h99 + b  {fmt(value)}  grad {signed(grad)}"
        # the cursor row is on screen
        assert view.scroll_offset.y <= view.cursor < view.scroll_offset.y + view.scrollable_content_region.height
        # the inspector shows the node show_node moved to
        await settle(pilot)
        assert "a100" in static_text(app, "#inspector-body").splitlines()[0]
        # a node just below the opened window: its own window joins the one shown
        assert LINKS.index("h97") == i + 5
        view.show_node("h97")
        await pilot.pause()
        assert view.highlighted_name == "h97"
        assert shown(view)[3:-3] == LINKS[i - 2:i + 8]


@pilot_test
async def test_an_edit_repaints_only_rows_whose_numbers_changed_and_opened_rows_show_the_edit():
    app = make_app("deep_chain")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        view = app.query_one(GraphView)
        await select_leaf(pilot, "w")
        before_edit = view.lines()
        repainted = count_repaints(view)
        await pilot.press("plus")  # w: 1 -> 1.1
        await settle(pilot)
        assert app.session.snapshot.node("w").scalar() == torch.tensor(1.1).item()
        after_edit = view.lines()
        changed = {i for i, (a, b) in enumerate(zip(before_edit, after_edit)) if a != b}
        # every value and grad moved (y is a target; the references and the fold did not)
        assert len(changed) == 11 and set(repainted) == changed
        assert assert_rows_show_the_session(app, view) == 12
        # rows opened after the edit carry its values and deltas too
        expected = torch_chain(1.0, torch.tensor(1.1).item(), 0.0)
        before = torch_chain(1.0, 1.0, 0.0)
        view.show_node("h120")
        await pilot.pause()
        value, grad = expected["h120"]
        assert app.session.snapshot.node("h120").scalar() == value
        label = tree_label(app, "h120")
        assert label.startswith(f"h120  {fmt(value)} Δ{signed(value - before['h120'][0])}  grad "), label
        assert assert_rows_show_the_session(app, view) == 17


@pilot_test
async def test_stepping_through_the_backward_pass_opens_the_chain_step_by_step():
    from backprop_tui.ui.screens.stepper import StepThroughScreen

    app = make_app("deep_chain")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        view = app.query_one(GraphView)
        await pilot.press("b")
        await settle(pilot)
        stepper = app.screen
        assert isinstance(stepper, StepThroughScreen)
        seen = []
        for _ in range(8):
            await pilot.press("right")
            await pilot.pause()
            step = stepper.current[stepper.position]
            seen.append(step.node)
            assert view.highlighted_name == step.node
        assert seen == ["h250", "a250", "h249", "a249", "h248", "a248", "h247", "a247"]
        # the fold was opened around the steps walked, no further than a few steps ahead
        # (a247 is LINKS[6]: two steps of context below it, h246 and a246)
        assert shown(view)[3:-3] == LINKS[3:9]
        (gap,) = gap_rows(view)
        assert f"… {493 - 6} more steps" in view.lines()[gap]
        await pilot.press("end")
        await pilot.pause()
        assert view.highlighted_name == stepper.current[stepper.position].node
