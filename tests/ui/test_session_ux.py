"""What a learner expects of the session around the panels: switching presets keeps the
edits of the one left behind, the preset says what it is about, a new node is read from
its top."""

from __future__ import annotations

from ui_support import make_app, open_leaf, pilot_test, ready, settle

from backprop_tui.ui.screens.about import AboutScreen
from backprop_tui.ui.widgets.inspector import Inspector


def _status(app) -> str:
    return str(app.query_one("#header-status").content)


async def _pick(pilot, name: str) -> None:
    """p, then the preset called `name` in the picker, with the keyboard."""
    await pilot.press("p")
    names = [name for name, _title in pilot.app.preset_titles()]
    await pilot.press("home", *["down"] * names.index(name), "enter")
    await ready(pilot)


@pilot_test
async def test_switching_presets_keeps_the_edits_of_the_one_left_behind():
    app = make_app("linear_regression")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await open_leaf(pilot, "w")
        w0 = app.session.leaf_value("w")
        await pilot.press("plus", "plus")
        await settle(pilot)
        edited = app.session
        w = edited.leaf_value("w")
        assert len(edited.undo_stack) == 2

        await _pick(pilot, "scalar_chain")
        assert app.session.preset.name == "scalar_chain"
        await _pick(pilot, "linear_regression")

        assert app.session is edited, "the session left behind comes back, not a fresh load"
        assert app.session.leaf_value("w") == w
        assert _status(app) == "back to linear_regression as you left it: 2 edits (ctrl+z undoes)"
        await pilot.press("ctrl+z", "ctrl+z")
        await settle(pilot)
        assert not app.session.can_undo
        assert app.session.leaf_value("w") == w0 != w


@pilot_test
async def test_a_preset_without_edits_is_opened_afresh():
    app = make_app("linear_regression")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        first = app.session
        await _pick(pilot, "scalar_chain")
        await _pick(pilot, "linear_regression")
        assert app.session is not first
        assert _status(app) == "opened linear_regression"


@pilot_test
async def test_i_shows_the_presets_description():
    app = make_app("gradient_accumulation")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("i")
        await pilot.pause()
        assert isinstance(app.screen, AboutScreen)
        shown = " ".join(str(static.content) for static in app.screen.query("Static"))
        assert "Autograd adds the contributions of both paths into x.grad: df/dx = y + 1." in " ".join(shown.split())
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, AboutScreen)


@pilot_test
async def test_the_inspector_starts_at_the_top_of_a_new_node_and_a_new_preset():
    app = make_app("simple_nn")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        inspector = app.query_one(Inspector)
        inspector.scroll_end(animate=False)
        await settle(pilot)
        assert inspector.scroll_y > 0, "simple_nn's output needs more than one screen of inspector"
        await pilot.press("down")  # the graph has the focus: the next node
        await settle(pilot)
        assert inspector.scroll_y == 0

        inspector.scroll_end(animate=False)
        await settle(pilot)
        assert inspector.scroll_y > 0
        await _pick(pilot, "softmax_classifier")
        assert inspector.scroll_y == 0


@pilot_test
async def test_the_loss_slice_refuses_an_integer_leaf_with_a_message():
    from backprop_tui.ui.screens.loss_slice import LossSliceScreen

    app = make_app("softmax_classifier")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        values = app.session.values["classes"].clone()
        await open_leaf(pilot, "classes")
        await pilot.press("x")
        await settle(pilot)
        assert not isinstance(app.screen, LossSliceScreen)
        assert _status(app).startswith("classes holds integers (indices): the output has no slice along it")
        assert app.session.values["classes"].equal(values)
