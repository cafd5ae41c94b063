"""The exercise screen through Pilot: answers typed as expressions, judged, recorded in the
session (undo keeps it), hints recorded, the next one highlighted."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from textual import events
from ui_support import pilot_test, plain, ready

from backprop_tui.engine.autosave import read_state
from backprop_tui.ui.app import BackpropApp

os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")


def exercise_app(preset: str) -> BackpropApp:
    return BackpropApp(preset, cursor_blink=False, theme="textual-dark", exercise=True)


async def type_answer(pilot, text: str, paste: bool = False) -> None:
    await pilot.press("y")
    field = pilot.app.screen.query_one("#ex-input")
    field.value = ""
    if paste:  # as a learner pastes an answer written elsewhere: one event, not a key per character
        field.post_message(events.Paste(text))
        await pilot.pause()
    else:
        await pilot.press(*text)
    assert field.value == text
    await pilot.press("enter")
    await pilot.pause()


@pilot_test
async def test_typing_answers_records_verdicts_and_moves_to_the_next():
    from backprop_tui.ui.screens.exercise import ExerciseScreen

    app = exercise_app("linear_regression")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ExerciseScreen)
        assert screen.current == "d"  # the first to do, from the output back
        await type_answer(pilot, "-d")
        progress = app.session.exercise
        assert progress.get("d").status == "wrong" and screen.current == "d"
        detail = plain(screen.query_one("#ex-detail").content)
        assert "the sign is flipped: the gradient is minus your answer" in detail
        await type_answer(pilot, "d")
        assert app.session.exercise.get("d").status == "exact" and screen.current == "f"
        await pilot.press("h")
        await app.workers.wait_for_complete()  # the hint is worked out in a thread
        await pilot.pause()
        assert app.session.exercise.get("f").hints == 1
        assert "hint: through c: " not in plain(screen.query_one("#ex-detail").content)
        assert "hint: through" in plain(screen.query_one("#ex-detail").content)
        await type_answer(pilot, "dd")
        await type_answer(pilot, "df")  # db
        assert screen.current == "c"
        await pilot.press("n")  # skip c
        assert screen.current == "w"
        await type_answer(pilot, "dc * x")  # dc is not derived yet
        assert app.session.exercise.get("w").status == "error"
        await pilot.press("up")
        await type_answer(pilot, "df")  # dc; dw is checked again with it
        assert app.session.exercise.get("w").status == "exact"
        assert app.session.exercise.done(screen.exercise.order) == 5
        assert "5 of 5 done" in plain(screen.query_one("#ex-title").content)
        await pilot.press("ctrl+z")
        assert app.session.exercise.get("c").status == "to do" and app.session.exercise.get("w").status == "error"
        await pilot.press("escape")
        assert not isinstance(app.screen, ExerciseScreen)
        # the palette's command opens it again, with the progress as it was left
        (command,) = [c for c in app.get_system_commands(app.screen) if c.title == "Backprop by hand"]
        command.callback()
        await pilot.pause()
        assert isinstance(app.screen, ExerciseScreen) and app.screen.current == "c"
        assert app.session.exercise.get("d").status == "exact"
        # autosave keeps the progress: written after the last answer, read back as it is
        await pilot.pause(0.8)
        await app.workers.wait_for_complete()
        await pilot.pause()
        state = read_state(app.session.preset, app.keeper.instance).state  # this explorer's own file
        assert app.keeper.last_problem is None and state.exercise == app.session.exercise


def test_snapshot_with_answers_in_each_state(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await pilot.pause()
        for text in ("d", "dd * 1.0000001", "-df", "dq"):  # exact, approximate, wrong, error; dw to do
            await type_answer(pilot, text)
            if pilot.app.screen.current != {"d": "f", "dd * 1.0000001": "b"}.get(text, pilot.app.screen.current):
                raise AssertionError(pilot.app.screen.current)
            if text in ("-df",):
                await pilot.press("down")
        await pilot.press("h")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(exercise_app("linear_regression"), terminal_size=(100, 30), run_before=run_before)


SOLUTION = Path(__file__).resolve().parents[1] / "data" / "exercises" / "makemore_part4.toml"


@pilot_test
async def test_typing_the_makemore_part4_solution_in_the_explorer():
    answers = tomllib.loads(SOLUTION.read_text(encoding="utf-8"))
    app = exercise_app("makemore_backprop")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.pause()
        screen = app.screen
        order = screen.exercise.order
        for node in order:  # each accepted answer moves the cursor to the next one to do
            assert screen.current == node
            await type_answer(pilot, answers[f"d{node}"], paste=True)
        progress = app.session.exercise
        assert progress.done(order) == 26 and {progress.get(n).status for n in order} == {"exact", "approximate"}
        assert "26 of 26 done" in plain(screen.query_one("#ex-title").content)
        assert screen.current == "dlogits_fused"
        await type_answer(pilot, answers["exercises"]["dlogits_fused"], paste=True)
        fused = app.session.exercise.get("dlogits_fused")
        assert fused.status == "approximate" and fused.maxdiff < 1e-8


@pilot_test
async def test_ctrl_s_keeps_the_answers_and_the_saved_file_goes_on_where_it_was_left(tmp_path):
    from backprop_tui.ui.screens.exercise import ExerciseScreen

    path = tmp_path / "mine.toml"
    app = exercise_app("linear_regression")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.pause()
        await type_answer(pilot, "d")
        await type_answer(pilot, "-dd")  # wrong: kept as typed
        await pilot.press("ctrl+s")  # from the exercise screen itself
        await pilot.pause()
        app.screen.query_one("#save-input").value = str(path)
        await pilot.press("enter")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
    saved = tomllib.loads(path.read_text())
    assert saved["answers"] == {"dd": "d", "df": "-dd"}
    again = exercise_app(str(path))
    async with again.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.pause()
        screen = again.screen
        assert isinstance(screen, ExerciseScreen)
        assert again.session.exercise.get("d").status == "exact"
        assert again.session.exercise.get("f").status == "wrong"
        assert "1 of 5 done" in plain(screen.query_one("#ex-title").content) and screen.current == "f"
