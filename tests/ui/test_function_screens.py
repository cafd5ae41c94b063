"""Seeing the function and taking it out: loss slice (x), training (n), your own
expression (e), export (E). Numbers on screen are checked against torch/the engine
computed independently here."""

from __future__ import annotations

import json
import os

import pytest
import torch
from ui_support import CLEAR, make_app, pilot_test, ready, select_leaf, settle, static_text, tree_label

from backprop_tui.engine import Session, load_preset, resolve_preset
from backprop_tui.engine.export import to_json
from backprop_tui.ui.format import fmt

os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
SIZE = (100, 30)


def screen_name(app) -> str:
    return type(app.screen).__name__


# ---------------------------------------------------------------- loss slice


@pilot_test
async def test_loss_slice_slope_on_screen_is_the_grad_of_w():
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select_leaf(pilot, "w")
        await pilot.press("x")
        await settle(pilot, rounds=3)
        assert screen_name(app) == "LossSliceScreen"
        screen = app.screen
        result = screen.result
        grad = float(app.session.snapshot.node("w").grad.reshape(-1)[0])
        assert grad == 39.0  # dJ/dw = (wx + b - y)·x = (-13)(-3)
        assert result.slope == pytest.approx(grad)
        numbers = static_text(screen, "#slice-numbers")
        assert f"slope of the tangent\n  {fmt(result.slope)}" in numbers
        assert f"grad ∂J/∂w\n  {fmt(grad)}" in numbers
        assert "w = 3\n" in numbers and "J = 84.5\n" in numbers

        # independent check of one plotted point: J at the first x by torch
        x0 = float(result.xs[0])
        w = torch.tensor(x0, dtype=torch.float32)
        J = ((w * -3.0 + 1.0 - 5.0) ** 2 / 2).item()
        assert result.ys[0] == pytest.approx(J, rel=1e-6)

        half = float(result.xs[-1] - result.xs[0]) / 2
        await pilot.press("plus")
        await settle(pilot, rounds=3)
        assert float(screen.result.xs[-1] - screen.result.xs[0]) / 2 == pytest.approx(2 * half, rel=1e-5)
        await pilot.press("minus", "minus")
        await settle(pilot, rounds=3)
        assert float(screen.result.xs[-1] - screen.result.xs[0]) / 2 == pytest.approx(half / 2, rel=1e-5)
        assert screen.result.slope == pytest.approx(39.0)
        await pilot.press("escape")
        assert screen_name(app) != "LossSliceScreen"


@pilot_test
async def test_loss_slice_of_an_input_shows_no_grad_but_the_slope():
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select_leaf(pilot, "x")
        await pilot.press("x")
        await settle(pilot, rounds=3)
        numbers = static_text(app.screen, "#slice-numbers")
        assert "no grad" in numbers
        # dJ/dx = (wx + b - y)·w = -13·3, by autograd on the slice's private graph
        assert f"slope of the tangent\n  {fmt(-39.0)}" in numbers


# ---------------------------------------------------------------- training


def stepped(preset: str, steps: int) -> Session:
    session = Session(load_preset(resolve_preset(preset)))
    for _ in range(steps):
        session.step()
    return session


@pilot_test
async def test_training_50_steps_equals_50_sgd_steps_and_is_one_undoable_edit():
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("n")
        assert screen_name(app) == "TrainingScreen"
        await pilot.press(*CLEAR, *"50", "enter")
        await settle(pilot, rounds=3)
        screen = app.screen
        assert screen.result is not None and screen.result.completed == 50 and not screen.running
        session = app.session
        expected = stepped("linear_regression", 50)
        for name in ("w", "b"):
            assert torch.allclose(session.values[name], expected.values[name], rtol=1e-6, atol=1e-6)
        assert session.snapshot.loss < 84.5
        assert session.snapshot.loss == pytest.approx(expected.snapshot.loss, rel=1e-5, abs=1e-9)
        assert session.loss_history == pytest.approx(expected.loss_history, rel=1e-5, abs=1e-9)
        assert session.steps_taken == 50
        assert [e.label for e in session.undo_stack] == ["train 50 steps"]
        status = static_text(screen, "#train-status")
        assert f"done: 50 steps, J 84.5 → {fmt(session.snapshot.loss)}" in status
        await pilot.press("escape")
        assert screen_name(app) != "TrainingScreen"
        assert f"{fmt(session.snapshot.loss)}" in tree_label(app, "J")
        await pilot.press("ctrl+z")
        await pilot.pause()
        assert app.session.snapshot.loss == 84.5


@pilot_test
async def test_cancel_keeps_the_partial_run_as_one_edit_and_undo_restores_84_5():
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("n", *CLEAR, *"100000", "enter")
        await pilot.pause(0.4)
        screen = app.screen
        assert screen.running  # the UI answered while the worker trains
        await pilot.press("c")
        await settle(pilot, rounds=3)
        result = screen.result
        assert result.stopped == "cancelled" and 0 < result.completed < 100000
        session = app.session
        assert [e.label for e in session.undo_stack] == [f"train {result.completed} steps"]
        assert session.snapshot.loss == pytest.approx(result.losses[-1])
        assert "cancelled" in static_text(screen, "#train-status")
        await pilot.press("escape")
        assert screen_name(app) != "TrainingScreen"
        await pilot.press("ctrl+z")
        await pilot.pause()
        assert app.session.snapshot.loss == 84.5
        assert "84.5" in tree_label(app, "J")


@pilot_test
async def test_escape_cancels_a_run_before_it_closes():
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("n", *CLEAR, *"100000", "enter")
        await pilot.pause(0.3)
        await pilot.press("escape")
        await settle(pilot, rounds=3)
        assert screen_name(app) == "TrainingScreen"  # the first escape only cancelled
        assert app.screen.result.stopped == "cancelled"


@pilot_test
async def test_training_without_zero_grad_accumulates():
    """Without zeroing, step k uses the sum of all gradients so far (as torch does)."""
    from backprop_tui.engine.analysis.live import FrozenState
    from backprop_tui.engine.analysis.training import train

    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        initial = FrozenState.of(app.session)
        await pilot.press("n", "ctrl+t")
        await settle(pilot, rounds=3)
        explain = static_text(app.screen, "#train-explain")
        assert "ADDS its gradient" in explain
        assert "w.grad: 39, then 78 (2×), then 117 (3×)" in explain
        await pilot.press(*CLEAR, *"3", "enter")
        await settle(pilot, rounds=3)
        assert [e.label for e in app.session.undo_stack] == ["train 3 steps (no zero_grad)"]

        # independently: a torch loop without zero_grad
        w = torch.tensor(3.0, requires_grad=True)
        b = torch.tensor(1.0, requires_grad=True)
        for _ in range(3):
            J = (w * -3.0 + b - 5.0) ** 2 / 2
            J.backward()  # adds into .grad
            with torch.no_grad():
                w -= 0.01 * w.grad
                b -= 0.01 * b.grad
        assert app.session.values["w"].item() == pytest.approx(w.item(), rel=1e-6)
        assert app.session.values["b"].item() == pytest.approx(b.item(), rel=1e-6)
        assert train(initial, 3, zero_grad=False).values["w"] == pytest.approx(w.item(), rel=1e-6)


# ---------------------------------------------------------------- your own expression


@pilot_test
async def test_custom_expression_opens_as_the_graph_with_the_seed_numbers():
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("e")
        assert screen_name(app) == "CustomExpressionScreen"
        await pilot.press(*CLEAR, *"((x+5)**3+1)**2", "tab", *CLEAR, *"x=-3", "enter")
        await settle(pilot, rounds=3)
        await ready(pilot)
        assert screen_name(app) != "CustomExpressionScreen"
        snapshot = app.session.snapshot
        assert snapshot.output == "f"
        # independently in torch
        x = torch.tensor(-3.0, requires_grad=True)
        f = ((x + 5) ** 3 + 1) ** 2
        f.backward()
        assert f.item() == 81 and x.grad.item() == 216
        assert float(snapshot.node("f").value) == f.item()
        assert float(snapshot.node("x").grad) == x.grad.item()
        assert "81" in tree_label(app, "f")
        assert "+216" in tree_label(app, "x")


@pilot_test
async def test_custom_expression_errors_show_beside_the_input_and_change_nothing():
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        before = app.session
        await pilot.press("e", *CLEAR, *"x +", "enter")
        await pilot.pause()
        message = static_text(app.screen, "#custom-message")
        assert "syntax error" in message and "x +" in message
        await pilot.press(*CLEAR, *"x * y", "enter")
        await pilot.pause()
        assert "give a starting value for y" in static_text(app.screen, "#custom-message")
        await pilot.press("escape")
        await settle(pilot, rounds=3)
        assert app.session is before and app.session.preset.name == "linear_regression"


# ---------------------------------------------------------------- export


@pilot_test
async def test_export_json_parses_to_the_snapshot_and_never_overwrites_without_yes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("s")  # one SGD step: the history has two losses
        await pilot.press("E")
        assert screen_name(app) == "ExportScreen"
        await pilot.press("shift+tab", "down", "enter")  # the JSON radio button
        await pilot.pause()
        assert app.screen.query_one("#export-path").value == "./linear_regression.json"
        await pilot.press("tab", "enter")
        await pilot.pause()
        assert screen_name(app) != "ExportScreen"
        path = tmp_path / "linear_regression.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        session = app.session
        assert data == json.loads(to_json(session.snapshot, session.loss_history))
        assert data["loss_history"] == pytest.approx([84.5, session.snapshot.loss])
        assert {n["name"]: n["value"] for n in data["nodes"]}["w"] == pytest.approx(session.values["w"].item())

        # again: the dialog asks; "n" keeps the file as it was
        path.write_text("mine", encoding="utf-8")
        await pilot.press("E", "shift+tab", "down", "enter", "tab", "enter")
        await pilot.pause()
        assert screen_name(app) == "ConfirmOverwrite"
        await pilot.press("n")
        await pilot.pause()
        assert path.read_text(encoding="utf-8") == "mine"
        assert screen_name(app) == "ExportScreen"
        assert "kept as it was" in static_text(app.screen, "#export-message")
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert json.loads(path.read_text(encoding="utf-8")) == data
        assert screen_name(app) != "ExportScreen"


@pilot_test
async def test_export_errors_are_shown(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    app = make_app("scalar_chain")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("E", *CLEAR, *"afile/out.md", "enter")
        await pilot.pause()
        assert screen_name(app) == "ExportScreen"
        assert static_text(app.screen, "#export-message") == "afile/out.md: Not a directory"
        await pilot.press(*CLEAR, "enter")
        await pilot.pause()
        assert "type the path" in static_text(app.screen, "#export-message")
        await pilot.press(*CLEAR, *"notes.md", "enter")
        await pilot.pause()
        text = (tmp_path / "notes.md").read_text(encoding="utf-8")
        assert text.startswith("# ") and "f" in text


# ---------------------------------------------------------------- snapshots


def test_snapshot_loss_slice(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await select_leaf(pilot, "w")
        await pilot.press("x")
        await settle(pilot, rounds=3)

    assert snap_compare(make_app("linear_regression"), terminal_size=SIZE, run_before=run_before)


def test_snapshot_training_done(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("n", *CLEAR, *"50", "enter")
        await settle(pilot, rounds=3)

    assert snap_compare(make_app("simple_nn"), terminal_size=SIZE, run_before=run_before)


def test_snapshot_training_accumulate(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("n", "ctrl+t")
        await settle(pilot, rounds=3)

    assert snap_compare(make_app("gradient_accumulation"), terminal_size=SIZE, run_before=run_before)


def test_snapshot_custom_expression(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("e", *CLEAR, *"h = x * y; g = h + x; f = g**2", "tab", *CLEAR, *"x=2")
        await pilot.pause()

    assert snap_compare(make_app("scalar_chain"), terminal_size=SIZE, run_before=run_before)


def test_snapshot_custom_expression_opened(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("e", "enter")
        await settle(pilot, rounds=3)
        await ready(pilot)

    assert snap_compare(make_app("linear_regression"), terminal_size=SIZE, run_before=run_before)


def test_snapshot_export(snap_compare, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("E")
        await pilot.pause()

    assert snap_compare(make_app("linear_regression"), terminal_size=SIZE, run_before=run_before)


def test_snapshot_export_confirm_overwrite(snap_compare, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "linear_regression.md").write_text("mine", encoding="utf-8")

    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("E", "enter")
        await pilot.pause()

    assert snap_compare(make_app("linear_regression"), terminal_size=SIZE, run_before=run_before)


@pilot_test
async def test_export_markdown_and_dot_are_the_engine_texts(tmp_path, monkeypatch):
    from backprop_tui.engine.export import to_dot, to_markdown

    monkeypatch.chdir(tmp_path)
    app = make_app("scalar_chain")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("E", "enter")  # Markdown is the default, ./scalar_chain.md
        await pilot.pause()
        session = app.session
        assert (tmp_path / "scalar_chain.md").read_text(encoding="utf-8") == to_markdown(
            session.snapshot, session.loss_history
        )
        await pilot.press("E", "shift+tab", "down", "down", "enter", "tab")
        await pilot.pause()
        assert app.screen.query_one("#export-path").value == "./scalar_chain.dot"
        await pilot.press("enter")
        await pilot.pause()
        assert (tmp_path / "scalar_chain.dot").read_text(encoding="utf-8") == to_dot(session.snapshot)
        assert "exported dot to ./scalar_chain.dot" in static_text(app, "#header-status")


def test_screen_bindings_have_ids_tooltips_and_unique_ids():
    from backprop_tui.ui.screens.custom_expression import CustomExpressionScreen
    from backprop_tui.ui.screens.export import ConfirmOverwrite, ExportScreen
    from backprop_tui.ui.screens.loss_slice import LossSliceScreen
    from backprop_tui.ui.screens.training import TrainingScreen

    app = make_app("scalar_chain")
    bindings = [b for _, group in app.binding_groups() for b in group]
    for screen in (LossSliceScreen, TrainingScreen, CustomExpressionScreen, ExportScreen, ConfirmOverwrite):
        bindings.extend(screen.BINDINGS)
    ids = [b.id for b in bindings]
    assert all(ids) and all(b.description and b.tooltip for b in bindings)
    assert len(ids) == len(set(ids))
    keys = {b.key: b.id for b in app.BINDINGS}
    assert {keys["x"], keys["n"], keys["e"], keys["E"]} == {
        "app.loss_slice",
        "app.train",
        "app.custom_expression",
        "app.export",
    }


@pilot_test
async def test_the_curve_a_worker_builds_is_the_one_the_widget_draws():
    """The training worker builds the plot on a Plot of its own (build_elsewhere) for the
    LossCurve to show: it must be what the widget's own render draws, cell for cell."""
    from textual.app import App
    from textual_plotext.plot import Plot

    from backprop_tui.ui.screens.training import LossCurve, build_elsewhere, draw_curve

    class OneCurve(App):
        def compose(self):
            yield LossCurve()

    app = OneCurve()
    async with app.run_test(size=(70, 18)) as pilot:
        await pilot.pause()
        widget = app.query_one(LossCurve)
        losses = [4.0 / (k + 1) for k in range(40)]
        draw_curve(widget.plt, losses, "loss", "L", widget.size.width)
        own = widget.render()
        size = (widget.size.width, widget.size.height)
        built = build_elsewhere(Plot(), size, widget.theme_name(), losses, "loss", "L")
        assert built is not None and "L per step" in own.plain
        assert built[2].plain == own.plain and built[2].spans == own.spans
        widget.show(built)
        assert widget.render() is built[2]


def test_a_curve_plotext_cuts_to_its_terminal_is_left_to_the_widget(monkeypatch):
    from textual_plotext.plot import Plot

    from backprop_tui.ui.screens.training import build_elsewhere

    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setenv("LINES", "10")
    losses = [4.0 / (k + 1) for k in range(40)]
    assert build_elsewhere(Plot(), (30, 8), "textual-auto-textual-dark", losses, "loss", "L") is not None
    assert build_elsewhere(Plot(), (70, 18), "textual-auto-textual-dark", losses, "loss", "L") is None


def test_the_plots_step_ticks_are_whole_numbers_at_a_round_spacing():
    from backprop_tui.ui.screens.training import whole_step_ticks

    assert whole_step_ticks(3) == [0, 1, 2, 3]
    assert whole_step_ticks(10) == [0, 2, 4, 6, 8, 10]
    assert whole_step_ticks(100) == [0, 20, 40, 60, 80, 100]
    assert whole_step_ticks(1000) == [0, 200, 400, 600, 800, 1000]
    assert whole_step_ticks(37) == [0, 10, 20, 30]
    for last in range(1, 3000, 7):
        ticks = whole_step_ticks(last)
        assert 2 <= len(ticks) <= 6 and ticks[0] == 0 and ticks[-1] <= last
