"""Drive the explorer with the keyboard; assert the numbers on screen and in the session.

Expected numbers come from torch computed here, independently of the engine.
"""

from __future__ import annotations

import pytest
import torch
from ui_support import (CLEAR, grid_cells, make_app, open_leaf, pilot_test, ready, select_leaf, settle, static_text,
                        tree_label, type_value)

from backprop_tui.ui.widgets.graph_view import AutogradView, GraphView
from backprop_tui.ui.widgets.inspector import Inspector
from backprop_tui.ui.widgets.weight_editor import EditInput, ElementGrid, LeafList, WeightEditor

SIZE = (100, 30)


def linear_regression_torch(w: float, b: float = 1.0, x: float = -3.0, y: float = 5.0):
    w_t = torch.tensor(w, requires_grad=True)
    b_t = torch.tensor(b, requires_grad=True)
    J = ((w_t * torch.tensor(x) + b_t - torch.tensor(y)) ** 2) / 2
    J.backward()
    return J.item(), w_t.grad.item(), b_t.grad.item()


def inspector_text(app) -> str:
    return static_text(app, "#inspector-body")


@pilot_test
async def test_set_w_to_2_with_the_keyboard_updates_every_panel():
    J, dw, db = linear_regression_torch(2.0)
    assert (J, dw, db) == (50.0, 30.0, -10.0)
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.session.snapshot.loss == 84.5
        view = app.query_one(GraphView)
        rows = {name: view.row_of(name) for name in ("J", "c", "d", "w", "b", "x", "y")}
        x_cells = grid_cells(app)
        await select_leaf(pilot, "w")
        await type_value(pilot, "2")

        snapshot = app.session.snapshot
        assert snapshot.node("w").scalar() == 2.0
        assert snapshot.loss == pytest.approx(J)
        assert snapshot.node("w").scalar_grad() == pytest.approx(dw)
        assert snapshot.node("b").scalar_grad() == pytest.approx(db)
        # on screen: header, tree labels, grid cells (deltas of the edit beside them)
        assert static_text(app, "#header-output").strip() == "J = 50 Δ-34.5"
        assert tree_label(app, "J").startswith("J = d**2 / 2  50 Δ-34.5  grad +1")
        assert "grad +30 Δ-9" in tree_label(app, "w")
        assert "grad -10 Δ+3" in tree_label(app, "b")
        assert grid_cells(app) == [("()", "2 Δ-1", "+30 Δ-9")]
        assert "∂J/∂w = ∂J/∂c · ∂c/∂w = -10 · -3 = 30" in inspector_text(app)
        # updated in place: the same graph rows and grid rows, no rebuilt widgets
        assert app.query_one(GraphView) is view and {name: view.row_of(name) for name in rows} == rows
        assert isinstance(app.focused, ElementGrid)
        assert app.query_one(WeightEditor).leaf == "w"
        assert grid_cells(app) != x_cells  # w's rows, not x's
        await pilot.press("ctrl+z")
        await pilot.pause()
        assert app.session.snapshot.loss == 84.5
        assert static_text(app, "#header-output").strip() == "J = 84.5 Δ+34.5"
        assert grid_cells(app) == [("()", "3 Δ+1", "+39 Δ+9")]
        assert static_text(app, "#header-status") == "undo: w = 2"
        await pilot.press("ctrl+y")
        await pilot.pause()
        assert app.session.snapshot.loss == 50.0


@pytest.mark.parametrize(
    "text, message",
    [
        ("abc", "not a number: 'abc'"),
        ("", "enter a number"),
        ("nan", "nan is not allowed"),
        ("inf", "inf is not allowed"),
        ("1e39", "out of float32 range"),
    ],
)
@pilot_test
async def test_invalid_text_keeps_the_value_and_the_focus_and_says_why(text, message):
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select_leaf(pilot, "w")
        await type_value(pilot, text)
        assert message in static_text(app, "#edit-message")
        assert isinstance(app.focused, EditInput)
        assert app.session.snapshot.node("w").scalar() == 3.0
        assert app.session.snapshot.loss == 84.5
        assert not app.session.can_undo
        # Escape cancels: the input closes, the grid has focus again, nothing changed
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.focused, ElementGrid)
        assert not app.query_one("#edit-row").display
        assert grid_cells(app) == [("()", "3", "+39")]


@pilot_test
async def test_class_indices_accept_whole_numbers_only():
    app = make_app("softmax_classifier")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select_leaf(pilot, "classes")
        await type_value(pilot, "1.5")
        assert "not a whole number" in static_text(app, "#edit-message")
        assert isinstance(app.focused, EditInput)
        await pilot.press(*CLEAR, "2", "enter")
        await pilot.pause()
        assert int(app.session.snapshot.node("classes").value[0]) == 2
        assert isinstance(app.focused, ElementGrid)


@pilot_test
async def test_sgd_step_on_simple_nn_lowers_the_loss_and_shows_the_history():
    app = make_app("simple_nn")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        before = app.session.snapshot.loss
        await pilot.press("s")
        await pilot.pause()
        after = app.session.snapshot.loss
        assert after < before
        assert app.session.steps_taken == 1
        lr = app.session.learning_rate
        assert static_text(app, "#header-stats").startswith(f"steps 1  lr {lr:g}  loss ")
        assert app.session.loss_history == [before, after]
        assert app.query_one("#header-spark").data == [before, after]
        await pilot.press("ctrl+z")
        await pilot.pause()
        assert app.session.snapshot.loss == before
        assert app.session.steps_taken == 0


@pilot_test
async def test_toggling_requires_grad_of_w_makes_its_grad_no_grad():
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select_leaf(pilot, "w")
        await pilot.press("g")
        await pilot.pause()
        assert app.session.snapshot.node("w").grad is None
        assert grid_cells(app) == [("()", "3", "no grad")]
        assert tree_label(app, "w").endswith("  no grad")
        assert static_text(app, "#leaf-info").endswith("○ requires_grad off")
        # b still gets its gradient: requires_grad is per leaf
        assert app.session.snapshot.node("b").scalar_grad() == -13.0
        await pilot.press("g")
        await pilot.pause()
        assert grid_cells(app)[0][2] == "+39"


@pilot_test
async def test_nudge_step_and_reset():
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select_leaf(pilot, "b")
        assert static_text(app, "#step-line").startswith("step ±0.1")
        await pilot.press("right_square_bracket")
        assert static_text(app, "#step-line").startswith("step ±1 ")
        await pilot.press("plus")
        await pilot.pause()
        assert app.session.snapshot.node("b").scalar() == 2.0
        await pilot.press("left_square_bracket", "minus")
        await pilot.pause()
        assert app.session.snapshot.node("b").scalar() == pytest.approx(1.9)
        J, _, db = linear_regression_torch(3.0, b=1.9)
        assert app.session.snapshot.loss == pytest.approx(J)
        assert app.session.snapshot.node("b").scalar_grad() == pytest.approx(db)
        await pilot.press("r")
        await pilot.pause()
        assert app.session.snapshot.node("b").scalar() == 1.0
        await pilot.press("plus", "R")
        await pilot.pause()
        assert app.session.snapshot.loss == 84.5


@pilot_test
async def test_plus_and_minus_nudge_from_the_grid_and_the_leaf_list_and_type_into_the_input():
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select_leaf(pilot, "b")

        def footer_keys() -> set[str]:
            return {b.binding.description for b in app.screen.active_bindings.values()}

        assert {"+step", "-step"} <= footer_keys()
        await pilot.press("enter")  # the input opens, with the value selected
        assert isinstance(app.focused, EditInput)
        assert not {"+step", "-step"} & footer_keys()  # these keys type now
        await pilot.press("backspace", "minus", "2", "plus", "equals_sign")
        assert app.query_one(EditInput).value == "-2+="
        assert app.session.snapshot.node("b").scalar() == 1.0  # nothing nudged
        await pilot.press("escape")
        assert isinstance(app.focused, ElementGrid)
        await pilot.press("plus", "plus", "minus")
        await pilot.pause()
        assert app.session.snapshot.node("b").scalar() == pytest.approx(1.1)
        app.query_one(LeafList).focus()  # b stays selected: the keys nudge it from the list too
        await pilot.press("minus")
        await pilot.pause()
        assert app.session.snapshot.node("b").scalar() == pytest.approx(1.0)


@pilot_test
async def test_chain_rule_with_the_seed_numbers():
    app = make_app("scalar_chain")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert isinstance(app.focused, GraphView)
        assert "f = 81" in static_text(app, "#header-output")
        await pilot.press("down", "down")  # f, g, h
        await pilot.pause()
        assert "chain rule  ∂f/∂h = ∂f/∂g · ∂g/∂h = 18 · 12 = 216" in inspector_text(app)
        await pilot.press("up")  # g: its local derivative with respect to h, from torch
        await pilot.pause()
        assert "d/dh (h³ + 1) = 3h² = 12" in inspector_text(app)
        await pilot.press("down")
        await pilot.press("down")
        await pilot.pause()
        assert "∂f/∂x = ∂f/∂h · ∂h/∂x = 216 · 1 = 216" in inspector_text(app)


@pilot_test
async def test_chain_rule_sums_over_consumers():
    app = make_app("gradient_accumulation")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("down", "down")  # f, p, x
        await pilot.pause()
        assert "∂f/∂x = ∂f/∂p · ∂p/∂x + ∂f/∂x (direct) = 1 · 3 + 1 = 4" in inspector_text(app)
        # x is used twice: full once, as a reference under f
        view = app.query_one(GraphView)
        refs = [i for i, line in enumerate(view.lines()) if "↪ x" in line]
        assert len(refs) == 1 and "shared" in view.lines()[refs[0]]
        # Enter on the reference jumps to the full entry
        await pilot.press("down", "down")
        assert view.cursor == refs[0]
        await pilot.press("enter")
        await pilot.pause()
        assert view.cursor == view.row_of("x") and view.highlighted_name == "x"


@pilot_test
async def test_raw_autograd_view_shows_the_grad_fn_chain():
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("a")
        await pilot.pause()
        raw = app.query_one(AutogradView)
        assert raw.display and not app.query_one(GraphView).display
        text = "\n".join(raw.lines())
        for fn in ("DivBackward0", "PowBackward", "SubBackward0", "AddBackward0", "MulBackward0"):
            assert fn in text
        assert "AccumulateGrad  → w.grad" in text and "AccumulateGrad  → b.grad" in text
        assert "x.grad" not in text  # x does not require grad: no AccumulateGrad for it
        await pilot.press("a")
        assert app.query_one(GraphView).display


@pilot_test
async def test_leaf_selected_in_the_graph_opens_in_the_editor():
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        tree = app.query_one(GraphView)
        tree.show_node("b")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one(WeightEditor).leaf == "b"
        assert isinstance(app.focused, ElementGrid)


@pilot_test
async def test_tab_moves_between_panels():
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        seen = [type(app.focused)]
        for _ in range(4):
            await pilot.press("tab")
            seen.append(type(app.focused))
        assert seen == [GraphView, LeafList, ElementGrid, Inspector, GraphView]
        await pilot.press("shift+tab")
        assert isinstance(app.focused, Inspector)


@pilot_test
async def test_learning_rate_prompt_validates():
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("l", "backspace", *"-1", "enter")
        await pilot.pause()
        assert "positive" in static_text(app.screen, "#prompt-message")
        assert app.session.learning_rate == 0.01
        await pilot.press(*CLEAR, *"0.05", "enter")
        await pilot.pause()
        assert app.session.learning_rate == 0.05
        assert "lr 0.05" in static_text(app, "#header-stats")
        await pilot.press("s")
        await pilot.pause()
        assert app.session.snapshot.node("w").scalar() == pytest.approx(3 - 0.05 * 39)


@pilot_test
async def test_preset_picker_opens_a_bundled_preset():
    app = make_app("scalar_chain")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("p")
        await pilot.pause()
        names = [option.id for option in app.screen.query_one("#picker-list").options]
        assert "linear_regression" in names and "simple_nn" in names
        await pilot.press("home", *["down"] * names.index("linear_regression"), "enter")
        await ready(pilot)
        assert app.session.preset.name == "linear_regression"
        assert static_text(app, "#header-output").strip() == "J = 84.5"
        assert tree_label(app, "w").startswith("w param  3  grad +39")


@pilot_test
async def test_command_palette_lists_the_presets():
    app = make_app("scalar_chain")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        for name in ("scalar_chain", "linear_regression", "simple_nn", "dead_relu"):
            assert f"Open preset: {name}" in titles


@pilot_test
async def test_a_broken_preset_file_shows_a_dialog_and_the_current_preset_stays(tmp_path):
    bad = tmp_path / "bad[1].toml"
    bad.write_text('output = "J"\n[tensors.x]\nrole = "input"\nvalue = 1.0\n[[steps]]\nname = "J"\nexpr = "x +"\n')
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        session = app.session
        await pilot.press("o", *str(bad), "enter")
        await ready(pilot)
        assert type(app.screen).__name__ == "ErrorDialog"
        message = static_text(app.screen, "#error-message")
        assert "bad[1].toml" in message  # brackets kept literally
        await pilot.press("enter")
        await pilot.pause()
        assert app.session is session
        assert app.session.snapshot.loss == 84.5


@pilot_test
async def test_a_missing_preset_at_start_leaves_the_app_usable():
    app = make_app("no/such/preset.toml")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert type(app.screen).__name__ == "ErrorDialog"
        await pilot.press("escape")
        assert app.session is None
        assert "No preset is open" in static_text(app, "#empty")
        await pilot.press("s", "ctrl+z")  # disabled without a session: no crash
        await pilot.press("p")
        await pilot.pause()
        await pilot.press("enter")
        await ready(pilot)
        assert app.session is not None


@pilot_test
async def test_help_lists_every_binding():
    app = make_app("scalar_chain")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        table = app.screen.query_one("#help-keys").content
        ids = {cell for cell in table.columns[2]._cells}
        for _, bindings in app.binding_groups():
            for binding in bindings:
                assert binding.id in ids
        await pilot.press("escape")
        assert type(app.screen).__name__ != "HelpScreen"


def test_every_binding_has_an_id_and_a_description():
    from backprop_tui.ui.screens.error_dialog import ErrorDialog
    from backprop_tui.ui.screens.help import HelpScreen
    from backprop_tui.ui.screens.preset_picker import PresetPicker
    from backprop_tui.ui.screens.prompt import PromptScreen

    app = make_app("scalar_chain")
    groups = [b for _, bindings in app.binding_groups() for b in bindings]
    for screen in (ErrorDialog, HelpScreen, PresetPicker, PromptScreen):
        groups.extend(screen.BINDINGS)
    ids = [b.id for b in groups]
    assert all(ids) and all(b.description and b.tooltip for b in groups)
    assert len(ids) == len(set(ids))


FIRST_SCREEN = """
import asyncio, sys
from backprop_tui.ui import BackpropApp

class NotLoading(BackpropApp):
    def open_preset(self, spec):  # the loader thread is what imports torch
        self.loading_requested = spec

async def main():
    app = NotLoading("linear_regression")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.query_one("#loading").display
        print(app.loading_requested, "torch" in sys.modules)

asyncio.run(main())
"""


def test_the_first_screen_paints_without_torch():
    """Everything up to the loading screen runs without importing torch."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", FIRST_SCREEN], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "linear_regression False"


def test_importing_the_ui_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, backprop_tui.ui; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_bindings_document_matches_the_bindings():
    from pathlib import Path

    from backprop_tui.ui.docs import bindings_markdown

    doc = Path(__file__).resolve().parents[2] / "docs" / "ui-bindings.md"
    assert bindings_markdown().strip() in doc.read_text(encoding="utf-8")


@pilot_test
async def test_narrow_graph_labels_drop_whole_pieces_not_digits():
    """At 80 columns g's label loses its expression, never a digit of its grad (+18)."""
    app = make_app("scalar_chain")
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        view = app.query_one(GraphView)
        shown = [view.row_text(view.row_of(name)) for name in "fghx"]
        assert any(" grad +18" in line for line in shown)
        assert any(" grad +216" in line for line in shown)
        assert view.full_label("g").plain.startswith("g = h**3 + 1  9  grad +18")  # the full label is kept
        width = view.scrollable_content_region.width
        assert all(len(line) <= width for line in shown)


@pilot_test
async def test_the_nudge_step_fits_each_preset_s_parameters():
    app = make_app("mlp_784")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        assert static_text(app, "#step-line").startswith("step ±0.001 ")  # weights of about 0.02
        grid = await open_leaf(pilot, "linear1.weight")
        before = float(app.session.snapshot.node("linear1.weight").value.reshape(-1)[0])
        await pilot.press("+")
        await settle(pilot)
        after = float(app.session.snapshot.node("linear1.weight").value.reshape(-1)[0])
        assert after - before == pytest.approx(0.001, rel=1e-3)
        assert grid.has_focus
        await pilot.press("right_square_bracket")  # step×10
        assert static_text(app, "#step-line").startswith("step ±0.01 ")
        app.open_preset("simple_nn")  # another preset: its own step again
        await ready(pilot)
        assert static_text(app, "#step-line").startswith("step ±0.1 ")
