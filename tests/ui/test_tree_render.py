"""The graph panel on Textual's line API (widgets/graph_view.py): what each row draws, at
80 to 200 columns; that an edit repaints only the rows it changed and leaves no row stale;
the mouse and the keys; the grad_fn view; graphs at the step limit in both views."""

from __future__ import annotations

import re

import pytest
from textual.geometry import Offset
from ui_support import count_repaints, make_app, open_leaf, pilot_test, ready, settle, static_text, tree_label

from backprop_tui.engine.numbers import fmt
from backprop_tui.ui.format import PREVIEW_DIGITS, signed
from backprop_tui.ui.widgets.graph_view import AutogradView, GraphView

NUMBER = r"[-+]?(?:\d+\.?\d*(?:e[-+]?\d+)?|inf|nan)"


def drawn(view) -> list[str]:
    """The rows on screen as Textual gets them from render_line."""
    height = view.scrollable_content_region.height
    return ["".join(segment.text for segment in view.render_line(y)).rstrip() for y in range(height)]


def assert_screen_is_current(view, what: str) -> None:
    """The rows on screen (kept in the widget's cache) are the rows drawn afresh."""
    top = view.scroll_offset.y
    fresh = view.lines()[top:top + view.scrollable_content_region.height]
    shown = drawn(view)[:len(fresh)]
    assert shown == [line.rstrip() for line in fresh], what


def assert_every_node_shows_its_numbers(app, preset: str, size) -> int:
    """Each node's row draws its value and grad: a scalar's in full, a tensor's first element
    (3 significant digits), each equal to the session's number as formatted."""
    view = app.query_one(GraphView)
    snapshot = app.session.snapshot
    checked = 0
    for node in snapshot.nodes:
        index = view.row_of(node.name)
        if index is None:
            continue
        label = view.drawn_label(index).plain
        assert label.startswith(node.name), (preset, size, label)
        digits = 6 if not node.shape else PREVIEW_DIGITS
        rest = label[len(node.name):]
        if "  " in rest:  # the numbers start at the first double space (after ` = expr` or ` param`)
            rest = rest.split("  ", 1)[1]
        value_part, _, grad_part = rest.partition("grad ")
        shown = re.findall(NUMBER, re.sub(r"\[[\d×]+\]", "", value_part))
        assert shown[0] == fmt(node.value.reshape(-1)[0], digits), (preset, size, label)
        if node.grad is None:
            assert label.endswith("no grad"), (preset, size, label)
        else:
            assert re.findall(NUMBER, grad_part)[0] == signed(node.grad.reshape(-1)[0], digits), (preset, size, label)
        checked += 1
    return checked


@pytest.mark.parametrize("preset", ["simple_nn", "makemore_backprop", "softmax_classifier", "attention_head"])
@pilot_test
async def test_every_node_shows_its_value_and_grad_from_80_to_200_columns(preset):
    app = make_app(preset)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        for size in ((80, 24), (100, 30), (120, 35), (200, 50)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            assert assert_every_node_shows_its_numbers(app, preset, size) == len(app.session.snapshot.nodes)
        if preset == "simple_nn":  # the room at 200 columns goes to longer previews and expressions
            assert tree_label(app, "Z1").startswith("Z1 = linear1(X)  [2×3] ")
            assert len(re.findall(NUMBER, tree_label(app, "Z1").split("grad")[0])) >= 5


@pilot_test
async def test_an_edit_repaints_only_changed_rows_and_no_row_is_stale():
    app = make_app("simple_nn")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        view = app.query_one(GraphView)
        await open_leaf(pilot, "linear3.bias")
        assert_screen_is_current(view, "after loading")
        for key in ("+", "+", "-"):
            before = view.lines()
            repainted = count_repaints(view)
            await pilot.press(key)
            await settle(pilot)
            after = view.lines()
            changed = {i for i, (a, b) in enumerate(zip(before, after)) if a != b}
            # linear3.bias moves J, A3, Z3 and every grad below; the input and the target stay
            assert {view.row_of(name) for name in ("J", "A3", "Z3", "linear3.bias")} <= changed
            assert view.row_of("X") not in changed and view.row_of("Y") not in changed
            assert changed <= set(repainted) <= changed | {view.cursor}, (key, changed, repainted)
            assert_screen_is_current(view, f"after {key}")
        # the flags the inspector finds are marked on their rows, and only those are repainted
        repainted = count_repaints(view)
        view.set_flags({"A1"})
        await pilot.pause()
        assert "⚠" in tree_label(app, "A1") and set(repainted) == {view.row_of("A1")}
        assert_screen_is_current(view, "after a flag")


@pilot_test
async def test_a_click_selects_a_row_and_a_click_on_the_arrow_folds_it():
    app = make_app("simple_nn")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        view = app.query_one(GraphView)
        row = view.row_of("Z2")
        text = view.row_text(row)
        arrow = text.index("▼")
        rows_before = len(view.lines())
        await pilot.click(view, offset=Offset(arrow + 6, row))  # on the label: selects
        await settle(pilot)
        assert view.highlighted_name == "Z2" and len(view.lines()) == rows_before
        assert "Z2" in static_text(app, "#inspector-body").splitlines()[0]
        await pilot.click(view, offset=Offset(arrow, row))  # on the arrow: folds
        await pilot.pause()
        assert view.row_text(row).startswith(text[:arrow] + "▶ Z2") and view.row_of("Z1") is None
        await pilot.click(view, offset=Offset(arrow, row))
        await pilot.pause()
        assert len(view.lines()) == rows_before


@pilot_test
async def test_keys_move_fold_and_open_leaves_and_references():
    app = make_app("gradient_accumulation")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        view = app.query_one(GraphView)
        assert app.focused is view and view.highlighted_name == app.session.snapshot.output
        lines = view.lines()
        (ref,) = [i for i, line in enumerate(lines) if "↪" in line]
        name = re.search(r"↪ (\S+)", lines[ref]).group(1)
        await pilot.press(*["down"] * ref)
        assert view.cursor == ref and "shared: shown in full above" in lines[ref]
        await pilot.press("enter")  # a reference: to the full entry
        await pilot.pause()
        assert view.cursor == view.row_of(name) and view.highlighted_name == name
        await pilot.press("home", "enter")  # the output: folds
        assert view.lines()[0].startswith("▶ ") and len(view.lines()) < len(lines)
        await pilot.press("right")  # unfolds
        assert view.lines() == lines
        await pilot.press("left")  # folds
        assert view.lines()[0].startswith("▶ ")
        await pilot.press("space")  # unfolds
        leaf_row = next(i for i, line in enumerate(lines)
                        if line.startswith(("└ ", "├ ")) and not line[2:].startswith(("▼", "▶")))
        view.move_cursor(leaf_row)
        await pilot.press("left")  # on a row of the output's: to the output
        assert view.cursor == 0 and view.lines() == lines
        # enter on a leaf opens it in the weight editor
        from backprop_tui.ui.widgets.weight_editor import WeightEditor

        leaf = next(n.name for n in app.session.snapshot.leaves if view.row_of(n.name) is not None)
        view.move_cursor(view.row_of(leaf))
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one(WeightEditor).leaf == leaf


@pilot_test
async def test_the_grad_fn_view_never_cuts_a_name_and_survives_maximize():
    app = make_app("simple_nn")
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        app.screen.maximize(app.query_one(GraphView))
        await pilot.pause()
        assert app.screen.maximized is not None
        await pilot.press("a")
        await pilot.pause()
        raw = app.query_one(AutogradView)
        assert raw.display and app.focused is raw
        maximized = app.screen.maximized
        assert maximized is not None and (maximized is raw or raw in maximized.walk_children())
        assert any("DivBackward0" in line for line in drawn(raw))  # not a blank screen
        lines = raw.lines()
        assert "AccumulateGrad  → linear1.weight.grad" in "\n".join(lines)
        assert raw.virtual_size.width >= max(len(line) for line in lines)  # it scrolls sideways instead
        await pilot.press("a")
        await pilot.pause()
        assert app.focused is app.query_one(GraphView) and any("J" in line for line in drawn(app.focused))


def write_limit_presets(folder):
    from backprop_tui.engine import limits

    chain = ['name = "long_chain"', 'title = "long chain"', f'output = "s{limits.MAX_STEPS}"',
             '[tensors.x]', 'role = "parameter"', 'value = 1.0',
             '[[steps]]', 'name = "s1"', 'expr = "x * 1.0001"']
    for k in range(2, limits.MAX_STEPS + 1):
        chain += ['[[steps]]', f'name = "s{k}"', f'expr = "s{k - 1} * 0.9999 + x"']
    layers = limits.MAX_STEPS // 3
    diamond = ['name = "diamond"', 'title = "diamond"', f'output = "c{layers}"',
               '[tensors.c0]', 'role = "parameter"', 'value = 1.0']
    for k in range(1, layers + 1):
        diamond += ['[[steps]]', f'name = "p{k}"', f'expr = "c{k - 1} * 0.5"',
                    '[[steps]]', f'name = "q{k}"', f'expr = "c{k - 1} * 0.5"',
                    '[[steps]]', f'name = "c{k}"', f'expr = "p{k} + q{k}"']
    paths = folder / "long_chain.toml", folder / "diamond.toml"
    for path, lines in zip(paths, (chain, diamond)):
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


@pytest.mark.parametrize("which", ["long_chain", "diamond"])
@pilot_test
async def test_graphs_at_the_step_limit_open_in_both_views(which, tmp_path):
    chain, diamond = write_limit_presets(tmp_path)
    app = make_app(str(chain if which == "long_chain" else diamond))
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        view = app.query_one(GraphView)
        assert len(view.lines()) < 40  # folded
        await pilot.press("end")
        output = app.session.snapshot.output
        first = app.session.snapshot.nodes[0].name
        view.show_node(first)  # opens the fold around the first step
        await pilot.pause()
        assert view.highlighted_name == first and first in tree_label(app, first)
        assert any(first in line for line in drawn(view))
        await pilot.press("a")
        await pilot.pause()
        raw = app.query_one(AutogradView)
        assert raw.display and len(raw.lines()) < 60
        assert f"{output}.grad_fn" in drawn(raw)[0]
        await pilot.press("end", "enter")  # the last row: open or fold, without recursion
        await pilot.pause()
        assert max(len(line) - len(line.lstrip("│├└ ")) for line in raw.lines()) <= 12
