"""The graph tree folds long chains (deep_chain: 250 tanh layers, 500 steps) and opens them
on demand: numbers on the rows come from the session's snapshot, and agree with a
separately written torch computation of the same chain."""

from __future__ import annotations

import torch
from ui_support import count_relabels, make_app, pilot_test, ready, select_leaf, settle, static_text

from backprop_tui.engine.numbers import fmt
from backprop_tui.ui.format import signed
from backprop_tui.ui.widgets.graph_tree import CHAIN_PAGE, ChainGap, GraphTree, chain_below, node_label

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


def gap_rows(tree: GraphTree) -> list:
    return [line.node for line in tree._tree_lines if isinstance(line.node.data, ChainGap)]


def rows(tree: GraphTree) -> list[str]:
    return [line.node.label.plain for line in tree._tree_lines]


def assert_labels_current(app, tree: GraphTree) -> None:
    """Every full row in the tree shows what a fresh label of the session's snapshot shows."""
    snapshot, previous = app.session.snapshot, app.session.previous
    for name, tree_node in tree._full.items():
        before = previous.node(name) if previous is not None and name in previous else None
        assert tree_node.label.plain == node_label(snapshot.node(name), before).plain, name


def test_the_chain_below_h250_is_every_layer_down_to_a1():
    from backprop_tui.engine import Session, load_preset, resolve_preset

    snapshot = Session(load_preset(resolve_preset("deep_chain"))).snapshot
    assert chain_below("h250", snapshot) == ["h250"] + LINKS
    assert chain_below("J", snapshot) == []  # the output feeds nothing: not a link
    assert chain_below("w", snapshot) == []  # a leaf used by every layer


@pilot_test
async def test_the_folded_row_counts_the_hidden_steps():
    app = make_app("deep_chain")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        tree = app.query_one(GraphTree)
        lines = tree._tree_lines
        assert len(lines) == 19  # not 1,500
        assert max(len(line.path) for line in lines) == 4  # J > h250 > a250 > w, not 500 deep
        (gap,) = gap_rows(tree)
        shown = [name for name in LINKS if name in tree._full]
        assert shown == ["a250", "h249", "a249", "a2", "h1", "a1"]
        hidden = [name for name in LINKS if name not in tree._full]
        assert len(hidden) == 493 == gap.data.hidden
        assert hidden[0] == "h248" and hidden[-1] == "h2"
        assert gap.label.plain.startswith(f"… 493 more steps (enter: open {CHAIN_PAGE})  h248 … h2")
        # the links sit at one level, in the order backprop walks them
        h250 = tree._full["h250"]
        assert [c.data.name if not isinstance(c.data, ChainGap) else "…" for c in h250.children] == [
            "a250", "h249", "a249", "…", "a2", "h1", "a1"]
        # leaves are shown in full where first reached, as references elsewhere
        assert [c.label.plain.split()[0:2] for c in tree._full["a1"].children] == [["↪", "w"], ["x", "input"], ["↪", "b"]]
        expected = torch_chain(1.0, 1.0, 0.0)
        snapshot = app.session.snapshot
        for name in ("a250", "h1", "a1", "x"):
            value, grad = expected[name]
            node = snapshot.node(name)
            assert node.scalar() == value and node.scalar_grad() == grad, name
            label = tree._full[name].label.plain
            assert f"  {fmt(value)}  grad {signed(grad)}" in label, label
        assert_labels_current(app, tree)


@pilot_test
async def test_enter_on_the_folded_row_opens_the_next_page_in_place():
    app = make_app("deep_chain")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        tree = app.query_one(GraphTree)
        (gap,) = gap_rows(tree)
        tree.move_cursor(gap)
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        opened = LINKS[3:3 + CHAIN_PAGE]
        assert opened[0] == "h248" and opened[-1] == "a224"
        assert all(name in tree._full for name in opened)
        assert LINKS[3 + CHAIN_PAGE] not in tree._full
        (gap,) = gap_rows(tree)
        assert gap.data.hidden == 493 - CHAIN_PAGE == 443
        assert gap.label.plain.startswith("… 443 more steps")
        # in place: after a249, in order, at the same level
        h250 = tree._full["h250"]
        names = [c.data.name if not isinstance(c.data, ChainGap) else "…" for c in h250.children]
        assert names == ["a250", "h249", "a249", *opened, "…", "a2", "h1", "a1"]
        # the cursor is on the first opened step, and the inspector follows it
        assert tree.highlighted_name == "h248"
        snapshot, expected = app.session.snapshot, torch_chain(1.0, 1.0, 0.0)
        for name in ("h248", "a240", "a224"):
            value, grad = expected[name]
            assert snapshot.node(name).scalar() == value
            assert f"  {fmt(value)}  grad {signed(grad)}" in tree._full[name].label.plain
        assert_labels_current(app, tree)
        # the rest, page by page: the row goes away when nothing is left
        while gap_rows(tree):
            tree.move_cursor(gap_rows(tree)[0])
            await pilot.pause()
            await pilot.press("enter")
            await pilot.pause()
        assert all(name in tree._full for name in LINKS)
        # J, h250, its 499 links, w and b under each of the 250 a's (in full once, then
        # as references), x under a1, y
        assert len(tree._tree_lines) == 1 + 1 + len(LINKS) + 2 * LAYERS + 1 + 1 == 1003
        assert_labels_current(app, tree)


@pilot_test
async def test_show_node_opens_the_fold_that_hides_the_node_and_highlights_it():
    app = make_app("deep_chain")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        tree = app.query_one(GraphTree)
        assert "a100" not in tree._full
        tree.show_node("a100")
        await pilot.pause()
        assert tree.cursor_node is tree._full["a100"]
        assert tree.highlighted_name == "a100"
        # two steps of context on either side; the rest stays folded, above and below
        i = LINKS.index("a100")
        assert [name for name in LINKS[3:-3] if name in tree._full] == LINKS[i - 2:i + 3]
        above, below = gap_rows(tree)
        assert (above.data.hidden, below.data.hidden) == (i - 2 - 3, len(LINKS) - 3 - (i + 3))
        assert above.data.hidden + below.data.hidden == 493 - 5
        value, grad = torch_chain(1.0, 1.0, 0.0)["a100"]
        assert f"a100 = w * h99 + b  {fmt(value)}  grad {signed(grad)}" in tree._full["a100"].label.plain
        # the cursor row is on screen
        assert tree.scroll_offset.y <= tree.cursor_line < tree.scroll_offset.y + tree.size.height
        # the inspector shows the node show_node moved to
        await settle(pilot)
        assert "a100" in static_text(app, "#inspector-body").splitlines()[0]
        # a node just below the opened window: its own window joins the one shown
        assert LINKS.index("h97") == i + 5
        tree.show_node("h97")
        await pilot.pause()
        assert tree.cursor_node is tree._full["h97"]
        assert [name for name in LINKS[3:-3] if name in tree._full] == LINKS[i - 2:i + 8]
        above, below = gap_rows(tree)
        assert (above.data.hidden, below.data.hidden) == (i - 2 - 3, len(LINKS) - 3 - (i + 8))


@pilot_test
async def test_an_edit_relabels_only_rows_in_the_tree_and_opened_rows_show_the_edit():
    app = make_app("deep_chain")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        tree = app.query_one(GraphTree)
        relabelled = count_relabels(tree)
        await select_leaf(pilot, "w")
        await pilot.press("plus")  # w: 1 -> 1.1
        await settle(pilot)
        assert app.session.snapshot.node("w").scalar() == torch.tensor(1.1).item()
        in_tree = set(tree._full)
        assert len(in_tree) == 12  # J, h250, the six links shown, w, b, x, y: not 505
        assert set(relabelled) <= in_tree
        assert set(relabelled) >= in_tree - {"y"}  # every value and grad moved (y is a target)
        assert_labels_current(app, tree)
        # rows opened after the edit carry its values and deltas too
        expected = torch_chain(1.0, torch.tensor(1.1).item(), 0.0)
        before = torch_chain(1.0, 1.0, 0.0)
        tree.show_node("h120")
        await pilot.pause()
        label = tree._full["h120"].label.plain
        value, grad = expected["h120"]
        assert app.session.snapshot.node("h120").scalar() == value
        assert label.startswith(f"h120 = tanh(a120)  {fmt(value)} Δ{signed(value - before['h120'][0])}"), label
        assert_labels_current(app, tree)


@pilot_test
async def test_stepping_through_the_backward_pass_opens_the_chain_step_by_step():
    from backprop_tui.ui.screens.stepper import StepThroughScreen

    app = make_app("deep_chain")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        tree = app.query_one(GraphTree)
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
            assert tree.highlighted_name == step.node
        assert seen == ["h250", "a250", "h249", "a249", "h248", "a248", "h247", "a247"]
        # the fold was opened around the steps walked, no further than a few steps ahead
        # (a247 is LINKS[6]: two steps of context below it, h246 and a246)
        assert [name for name in LINKS[3:-3] if name in tree._full] == LINKS[3:9]
        (gap,) = gap_rows(tree)
        assert gap.data.hidden == 493 - 6
        await pilot.press("end")
        await pilot.pause()
        last = stepper.current[stepper.position].node
        assert tree.highlighted_name == last
