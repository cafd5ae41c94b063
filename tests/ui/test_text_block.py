"""TextBlock draws what a Static of the same Texts draws, rendering only the rows asked for."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual.app import App
from textual.geometry import Region
from textual.widgets import Static

from backprop_tui.ui.widgets.text_block import TextBlock
from ui_support import pilot_test

LINES = [
    Text("Paths: every route from X[0,0] to J", style="bold underline"),
    Text(""),
    Text.assemble(("  X[0,0] → Z1[0,1] → A1[0,1] → Z2[0,0] → A2[0,0] → Z3[0,0] → A3[0,0] → J: ", "dim"),
                  ("0.5 × 0.25 × (-1.3) = -0.1625", "bold")),
    Text("a\ttab that expands"),
    Text("averyveryverylongwordwithoutanyspacesthatmustbefoldedacrossseveralrowsofthepanel"),
    Text("two\nlines in one Text", style="italic"),
    Text("short"),
]


class Pair(App):
    CSS = "#static, #block { width: 37; } #static { height: auto; }"

    def compose(self):
        yield Static(id="static")
        yield TextBlock(id="block")


def segments(strips) -> list[list[tuple[str, object]]]:
    return [[(segment.text, segment.style) for segment in strip] for strip in strips]


@pilot_test
async def test_a_text_block_draws_what_a_static_draws_at_every_width():
    app = Pair()
    async with app.run_test(size=(60, 40)) as pilot:
        static, block = app.query_one("#static", Static), app.query_one("#block", TextBlock)
        for width in (37, 20, 11):
            static.styles.width = block.styles.width = width
            static.update(Group(*LINES))
            block.update(LINES)
            await pilot.pause()
            assert block.size.height == static.size.height == block.height_for(LINES, width)
            region = Region(0, 0, width, static.size.height)
            assert segments(block.render_lines(region)) == segments(static.render_lines(region)), width


@pilot_test
async def test_a_text_block_renders_only_the_rows_asked_for():
    app = Pair()
    async with app.run_test(size=(60, 40)) as pilot:
        block = app.query_one("#block", TextBlock)
        block.update(LINES * 4)
        await pilot.pause()
        assert block.size.height > 20
        block._strips.clear()
        block.render_lines(Region(0, 3, block.size.width, 5))
        assert sorted(block._strips) == [3, 4, 5, 6, 7]


@pilot_test
async def test_a_text_block_counts_rows_as_rich_wraps_them():
    # the row count comes from Rich's line breaking without building the rows: it must
    # agree with Text.wrap, which draws them
    import random

    rng = random.Random(7)
    words = ["X[0,0]", "→", "Z1[0,1]", "×", "(-1.3)", "=", "0.0241848", "averyveryverylongwordwithoutspaces",
             "∂J/∂W1[0,1]", " ", "  ", "a", "Σ", "contributions:"]
    app = Pair()
    async with app.run_test(size=(60, 40)):
        block = app.query_one("#block", TextBlock)
        for _ in range(400):
            line = Text(" ".join(rng.choice(words) for _ in range(rng.randint(1, 25))), style="bold")
            if rng.random() < 0.2:
                line.overflow = rng.choice(["fold", "crop", "ellipsis"])
            width = rng.randint(1, 70)
            assert block.height_for([line], width) == len(line.wrap(app.console, width)), (line.plain, width)


@pilot_test
async def test_an_update_that_keeps_the_height_repaints_only_the_rows_that_changed(monkeypatch):
    app = Pair()
    async with app.run_test(size=(60, 40)) as pilot:
        static, block = app.query_one("#static", Static), app.query_one("#block", TextBlock)
        block.update(LINES)
        await pilot.pause()
        block.render_lines(Region(0, 0, *block.size))
        rows = {line.plain: block._starts[i] for i, line in enumerate(LINES)}
        # new Text objects, equal but for one line and the style of another
        lines = [line.copy() for line in LINES]
        lines[2] = Text.assemble(("  X[0,0] → Z1[0,1] → A1[0,1] → Z2[0,0] → A2[0,0] → Z3[0,0] → A3[0,0] → J: ", "dim"),
                                 ("0.5 × 0.25 × (-1.4) = -0.175", "bold"))  # another number, as many rows
        lines[6] = Text("short", style="bold")
        assert block.height_for(lines, 37) == block.height_for(LINES, 37)
        dirty: list[Region] = []
        original = block.refresh
        monkeypatch.setattr(block, "refresh", lambda *regions, **kw: dirty.extend(regions) or original(*regions, **kw))
        block.update(lines, layout=False)
        third, last = rows[LINES[2].plain], rows["short"]
        assert [(r.y, r.height) for r in dirty] == [(third, rows[LINES[3].plain] - third), (last, 1)]
        await pilot.pause()
        static.update(Group(*lines))
        await pilot.pause()
        region = Region(0, 0, 37, block.size.height)
        assert segments(block.render_lines(region)) == segments(static.render_lines(region))
        # a width change, or a layout asked for, repaints it all
        dirty.clear()
        block.update(LINES, layout=True)
        assert dirty == []  # refresh() with no region: the whole block
