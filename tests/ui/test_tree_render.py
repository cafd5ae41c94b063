"""The graph tree draws its rows itself (tree_lines.QuickTree): every row must be the Strip
Textual's own Tree._render_line makes for the same state, segment for segment (text and
style), whatever the cursor, the mouse, the focus or the last edit."""

from __future__ import annotations

from textual.geometry import Region
from textual.widgets import Tree
from textual.widgets._tree import TOGGLE_STYLE
from ui_support import make_app, open_leaf, pilot_test, ready, settle

from backprop_tui.ui.widgets.graph_tree import ChainGap, GraphTree, LabelParts, node_parts

SIZE = (100, 30)  # the latency benchmark's terminal: a narrow panel, labels cut to fit


def segments(strip) -> list[tuple[str, object]]:
    return [(segment.text, segment.style) for segment in strip]


def assert_rows_as_textual_draws_them(tree: GraphTree, what: str) -> int:
    """Each row on screen (and one past the last), drawn by GraphTree and by Tree._render_line."""
    width = tree.size.width
    style = tree.rich_style
    scroll_y = tree.scroll_offset.y
    rows = range(scroll_y, min(len(tree._tree_lines) + 1, scroll_y + tree.size.height))
    for y in rows:
        tree._line_cache.clear()  # both methods use the line cache, with the same key
        ours = tree._render_line(y, 0, width, style)
        tree._line_cache.clear()
        textual = Tree._render_line(tree, y, 0, width, style)
        assert segments(ours) == segments(textual), f"{what}: row {y}"
    tree._line_cache.clear()
    return len(rows)


def assert_screen_is_current(tree: GraphTree, what: str) -> None:
    """The rows as the last frames left them (Tree's line cache, the widget's line cache)
    are the rows drawn afresh: no row kept a label it should have redrawn."""
    region = Region(0, 0, tree.size.width, tree.size.height)
    shown = [segments(strip) for strip in tree.render_lines(region)]
    tree._line_cache.clear()
    tree._styles_cache.clear()
    fresh = [segments(strip) for strip in tree.render_lines(region)]
    for y, (a, b) in enumerate(zip(shown, fresh)):
        assert a == b, f"{what}: row {y} on screen is stale"


def icon_style_count(tree: GraphTree) -> int:
    """How many rows on screen carry a fold icon (the icon's style has the toggle meta)."""
    tree._line_cache.clear()
    count = 0
    for y in range(len(tree._tree_lines)):
        strip = tree._render_line(y, 0, tree.size.width, tree.rich_style)
        count += any(s.style is not None and s.style.meta.get("toggle") for s in strip)
    tree._line_cache.clear()
    return count


@pilot_test
async def test_rows_match_textual_through_cursor_hover_focus_flags_and_edits():
    app = make_app("simple_nn")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        tree = app.query_one(GraphTree)
        tree.focus()
        await pilot.pause()
        assert tree.has_focus and tree.cursor_line == 0
        assert icon_style_count(tree) > 0  # the rows with children show their fold icon
        assert assert_rows_as_textual_draws_them(tree, "focused, cursor on the output") > 10
        # the cursor and the mouse on rows deep in the tree: the guides above them change
        tree.cursor_line = 5
        tree.hover_line = 8
        await pilot.pause()
        assert tree.get_node_at_line(8)._hover
        assert_rows_as_textual_draws_them(tree, "cursor on row 5, mouse on row 8")
        # a flagged node (its mark is in the label) and a folded node (its icon changes)
        name = tree.get_node_at_line(2).data.name
        tree.set_flags({name})
        tree.get_node_at_line(3).collapse()
        await pilot.pause()
        assert "⚠" in tree.drawn_label(tree.get_node_at_line(2)).text.plain
        assert tree.get_node_at_line(3).is_collapsed
        assert_rows_as_textual_draws_them(tree, "flag on row 2, row 3 folded")
        tree.get_node_at_line(3).expand()
        # focus elsewhere: the cursor row and the guides take their unfocused styles; then an
        # edit, which relabels every row with new values, grads and deltas
        await open_leaf(pilot, "linear1.weight")
        assert not tree.has_focus
        before = tree._full["Z1"].label.plain
        drawn = {name: tree.drawn_label(row) for name, row in tree._full.items()}
        await pilot.press("+")
        await settle(pilot)
        assert tree._full["Z1"].label.plain != before and "Δ" in tree._full["Z1"].label.plain
        # the narrow panel shows Z1 by its shape: its row keeps the label drawn (not redrawn),
        # the output's shows the new loss
        assert tree.drawn_label(tree._full["Z1"]) is drawn["Z1"]
        assert tree.drawn_label(tree._full["J"]) is not drawn["J"]
        assert_screen_is_current(tree, "after an edit")
        assert_rows_as_textual_draws_them(tree, "unfocused, after an edit")
        await pilot.press("-")
        await settle(pilot)
        assert_screen_is_current(tree, "after a second edit")
        tree.hover_line = 1
        tree.focus()
        await pilot.pause()
        assert_rows_as_textual_draws_them(tree, "focused again, after a second edit, mouse on row 1")


@pilot_test
async def test_rows_match_textual_on_folded_chains_and_references():
    app = make_app("deep_chain")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        tree = app.query_one(GraphTree)
        tree.focus()
        (gap,) = [line.node for line in tree._tree_lines if isinstance(line.node.data, ChainGap)]
        tree.move_cursor(gap)  # the cursor on the "… N more steps" row
        await pilot.pause()
        refs = [line for line in tree._tree_lines if line.node.data is not None
                and not isinstance(line.node.data, ChainGap) and line.node.data.ref]
        assert refs, "deep_chain shows its shared leaves as references"
        assert tree.scroll_offset.y == 0
        assert_rows_as_textual_draws_them(tree, "cursor on the folded chain row")
        tree.hover_line = refs[0].node.line
        await pilot.pause()
        assert_rows_as_textual_draws_them(tree, "mouse on a reference row")
        # a page of the chain opened, and scrolled: the rows drawn are the ones below the top
        tree.move_cursor(gap)
        await pilot.press("enter")
        await pilot.pause()
        assert len(tree._tree_lines) > 60
        tree.scroll_to(y=30, animate=False)
        await pilot.pause()
        assert tree.scroll_offset.y == 30
        assert assert_rows_as_textual_draws_them(tree, "a page opened, scrolled by 30 rows") > 20


def test_a_label_fits_as_the_first_of_its_forms_that_fits():
    from backprop_tui.engine import Session, load_preset, resolve_preset

    session = Session(load_preset(resolve_preset("simple_nn")))
    session.nudge("linear1.weight", (0, 0), 0.1)
    snapshot, previous = session.snapshot, session.previous
    for node in snapshot.nodes:
        parts = node_parts(node, previous.node(node.name), flagged=node.name == "A1")
        assert isinstance(parts, LabelParts)
        # every label form built in full, fullest first: fit measures before it builds
        candidates = [parts.label(*form) for form in parts.forms()]
        for width in range(0, candidates[0].cell_len + 2):
            fitted = parts.fit(width)
            fitting = [c for c in candidates if c.cell_len <= width]
            if fitting:
                assert fitted == fitting[0], (node.name, width)
            else:
                cut = candidates[-1].copy()
                cut.truncate(max(1, width), overflow="ellipsis")
                assert fitted == cut, (node.name, width)


def test_the_toggle_style_is_what_marks_an_icon():
    assert TOGGLE_STYLE.meta.get("toggle")  # icon_style_count relies on it


def test_a_form_measured_by_its_plain_text_is_the_text_shown():
    """Forms writes each value and grad form's plain text itself (to measure it before
    making it): it must be format.value_of/grad_of's, through edits that mark deltas."""
    from backprop_tui.engine import Session, load_preset, resolve_preset

    checked = 0
    for preset in ("simple_nn", "dead_relu", "scalar_chain", "softmax_classifier", "linear_regression"):
        session = Session(load_preset(resolve_preset(preset)))
        leaf = session.snapshot.leaves[0]
        for delta in (0.1, -0.3, 0.0):
            session.nudge(leaf.name, (0,) * len(leaf.shape), delta)
            snapshot, previous = session.snapshot, session.previous
            for node in snapshot.nodes:
                before = previous.node(node.name) if node.name in previous else None
                for flagged in (False, True):
                    parts = node_parts(node, before, flagged)
                    for forms in (parts.values, parts.grads):
                        for form, plain in enumerate(forms.plains):
                            assert forms.text(form).plain == plain, (preset, node.name, form)
                            checked += 1
    assert checked > 200
