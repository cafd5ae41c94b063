"""Nothing lost: the quit question, ctrl+s as a new preset, autosave and the restore offer.

Every test runs in its own working directory and data directory (BACKPROP_TUI_DATA_DIR,
set for the whole suite by tests/conftest.py and again here), so nothing is written
outside tmp_path: not the user's data folder, not the bundled presets.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch
from ui_support import make_app, pilot_test, ready, select_leaf, settle, static_text

from backprop_tui.engine import Session, load_preset, resolve_preset
from backprop_tui.engine.autosave import RESTORE_LABEL, data_dir, read_state, state_path
from backprop_tui.engine.preset import presets_dir
from backprop_tui.ui.persistence import DEBOUNCE
from backprop_tui.ui.screens.choice import ChoiceScreen
from backprop_tui.ui.screens.save_preset import SavePresetScreen

SIZE = (100, 30)


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKPROP_TUI_DATA_DIR", str(tmp_path / "data"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def presets_fingerprint() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(presets_dir().iterdir())}


async def edit_w(pilot, times: int = 1) -> None:
    await select_leaf(pilot, "w")
    await pilot.press(*["plus"] * times)
    await pilot.pause()


def box(app) -> str | None:
    screen = app.screen
    return screen.box_id if isinstance(screen, ChoiceScreen) else type(screen).__name__


def test_the_suite_never_uses_the_real_data_dir(tmp_path):
    assert data_dir() == tmp_path / "data"


@pilot_test
async def test_quit_without_edits_quits_at_once():
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.return_code == 0


@pilot_test
async def test_quit_with_edits_asks_and_cancel_goes_back_then_discard_quits():
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await edit_w(pilot)
        session = app.session
        assert session.dirty
        for cancel in ("c", "escape"):
            await pilot.press("ctrl+q")
            await pilot.pause()
            assert box(app) == "quit-box"
            assert "unsaved edits" in str(app.screen.query_one(".choice-message").content)
            await pilot.press(cancel)
            await pilot.pause()
            assert len(app.screen_stack) == 1 and app.is_running and app.session is session
        await pilot.press("ctrl+q", "ctrl+q")  # a second ctrl+q does not stack a second question
        await pilot.pause()
        assert box(app) == "quit-box" and len(app.screen_stack) == 2
        await pilot.press("d")
        await pilot.pause()
    assert app.return_code == 0
    # discard quits without a preset file, but the autosave was written on the way out
    state = read_state(session.preset, app.keeper.instance).state
    assert state is not None and state.values == {"w": pytest.approx(3.1)}
    assert not list(Path.cwd().iterdir())


@pilot_test
async def test_quit_save_writes_the_preset_then_quits(private_dirs):
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await edit_w(pilot, 2)
        values = {k: v.clone() for k, v in app.session.values.items()}
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, SavePresetScreen)
        assert app.screen.query_one("#save-input").value == "./linear_regression-edited.toml"
        await pilot.press("enter")
        await settle(pilot)
    assert app.return_code == 0
    saved = private_dirs / "linear_regression-edited.toml"
    loaded = Session(load_preset(saved))
    for name, value in values.items():
        assert torch.equal(loaded.values[name], value), name


@pilot_test
async def test_ctrl_s_saves_marks_saved_and_never_overwrites_without_asking(private_dirs):
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await edit_w(pilot)
        session = app.session
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, SavePresetScreen)
        await pilot.press("enter")
        await settle(pilot)
        first = private_dirs / "linear_regression-edited.toml"
        assert first.is_file() and not session.dirty
        assert "saved" in static_text(app, "#header-status")
        original = first.read_bytes()
        # more edits; the next default path is a new file
        await pilot.press("plus")
        await pilot.pause()
        assert session.dirty
        await pilot.press("ctrl+s")
        await pilot.pause()
        field = app.screen.query_one("#save-input")
        assert field.value == "./linear_regression-edited-2.toml"
        # typed over the first file: asks; cancel keeps it byte for byte
        field.value = "linear_regression-edited"  # .toml is added
        await pilot.press("enter")
        await pilot.pause()
        assert box(app) == "overwrite-box"
        await pilot.press("c")
        await settle(pilot)
        assert first.read_bytes() == original and session.dirty
        assert len(app.screen_stack) == 1
        # again, and overwrite
        await pilot.press("ctrl+s")
        await pilot.pause()
        app.screen.query_one("#save-input").value = str(first)
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("o")
        await settle(pilot)
        assert first.read_bytes() != original and not session.dirty
        assert torch.equal(Session(load_preset(first)).values["w"], session.values["w"])
        assert sorted(p.name for p in private_dirs.iterdir()) == ["linear_regression-edited.toml"]  # no temp files
        assert app._exception is None


@pytest.mark.parametrize("where", ["new_name.toml", "linear_regression.toml", "sub/deeper"])
@pilot_test
async def test_a_save_into_the_bundled_presets_shows_an_error_and_writes_nothing(where):
    before = presets_fingerprint()
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await edit_w(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        app.screen.query_one("#save-input").value = str(presets_dir() / where)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SavePresetScreen), box(app)  # no overwrite question: a message beside the input
        message = static_text(app.screen, "#save-message")
        assert "bundled presets" in message or "does not exist" in message, message
        await pilot.press("escape")
        await pilot.pause()
        assert len(app.screen_stack) == 1 and app.session.dirty
    assert presets_fingerprint() == before
    assert not (presets_dir() / "sub").exists()


@pilot_test
async def test_autosave_after_edits_and_the_restore_offer_on_the_next_start():
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await edit_w(pilot, 3)
        await pilot.press("s")  # an SGD step too
        await pilot.pause(DEBOUNCE + 0.3)
        await settle(pilot)
        session = app.session
        first = app.keeper.instance
        path = state_path(session.preset, first)
        assert path.is_file()
        assert app.keeper.saves_written >= 1 and app.keeper.last_problem is None
        state = read_state(session.preset, first).state
        assert state.steps_taken == 1
        edited = {k: v.clone() for k, v in session.values.items()}
        flags = dict(session.requires_grad)
        losses = list(session.sgd_losses)

    # the next start with the same preset: restore
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await settle(pilot)
        assert box(app) == "restore-box"
        text = str(app.screen.query_one(".choice-message").content)
        assert "2 leaf value(s) changed" in text and "1 SGD step(s)" in text
        await pilot.press("r")
        await pilot.pause()
        session = app.session
        for name, value in edited.items():
            assert torch.equal(session.values[name], value), name
        assert session.requires_grad == flags and session.sgd_losses == losses and session.steps_taken == 1
        assert [e.label for e in session.undo_stack] == [RESTORE_LABEL]  # one undoable edit
        fresh = Session(session.preset)
        fresh.apply_state(edited, flags, "check")
        assert session.snapshot.loss == fresh.snapshot.loss
        assert static_text(app, "#header-output").strip().startswith(f"J = {fresh.snapshot.loss:g}")
        await pilot.press("ctrl+z")
        await pilot.pause()
        assert session.snapshot.loss == 84.5 and not session.dirty
        await pilot.pause(DEBOUNCE + 0.3)
        await settle(pilot)
        # held in this explorer's own file now, so the restored one is gone
        assert not path.exists() and state_path(session.preset, app.keeper.instance).is_file()

    # and once more: start fresh deletes the autosave
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await settle(pilot)
        assert box(app) == "restore-box"
        await pilot.press("f")
        await pilot.pause()
        assert app.session.snapshot.loss == 84.5 and not app.session.undo_stack
        assert not list((data_dir() / "sessions").glob("*.json"))


@pilot_test
async def test_no_offer_when_the_autosave_equals_the_preset():
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await edit_w(pilot)
        await pilot.press("ctrl+z")  # back to the preset's values
        await pilot.pause()
        await pilot.press("ctrl+q")  # not dirty: quits at once, writing the autosave
        await pilot.pause()
    assert read_state(load_preset(resolve_preset("linear_regression")), app.keeper.instance).state.values == {}
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await settle(pilot)
        assert len(app.screen_stack) == 1


@pilot_test
async def test_a_corrupt_autosave_is_ignored_with_a_note(tmp_path):
    preset = load_preset(resolve_preset("linear_regression"))
    path = state_path(preset)
    path.parent.mkdir(parents=True)
    path.write_text('{"format": "backprop-tui session", "version": 1, "val', encoding="utf-8")
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await settle(pilot)
        assert len(app.screen_stack) == 1
        assert "unusable" in static_text(app, "#header-status")
        await edit_w(pilot)
        app.keeper.flush()
        assert read_state(preset, app.keeper.instance).state.values == {"w": pytest.approx(3.1)}  # its own file
    assert path.is_file()  # the corrupt one is left as it was


# ---------------------------------------------------------------- paths that cannot be written


def odd_paths(work: Path) -> list[tuple[str, str]]:
    """(typed path, what the message beside the input says) for paths that can never be written."""
    fifo = work / "pipe.toml"
    os.mkfifo(fifo)
    (work / "link.toml").symlink_to(work / "pipe.toml")
    return [
        (".", "type a file name, not a folder"),
        ("/", "type a file name, not a folder"),
        ("~", "type a file name, not a folder"),
        ("a" * 300, "the file name is too long"),
        ("~nosuchuser_backprop/x", "~nosuchuser_backprop: no such user"),
        ("missing/x.toml", "does not exist"),
        ("pipe.toml", "is a FIFO (named pipe); only a regular file is replaced"),
        ("link.toml", "is a symbolic link"),
    ]


@pilot_test
async def test_save_and_export_refuse_odd_paths_beside_the_input(private_dirs):
    """Each path gets one line under the input, the dialog stays open, nothing is written or created."""
    cases = odd_paths(private_dirs)
    before = sorted(p.name for p in private_dirs.iterdir())
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await edit_w(pilot)
        for key, field_id, message_id in (("ctrl+s", "#save-input", "#save-message"),
                                          ("E", "#export-path", "#export-message")):
            await pilot.press(key)
            await pilot.pause()
            dialog = app.screen
            for text, expected in cases:
                dialog.query_one(field_id).value = text
                await pilot.press("enter")
                await settle(pilot)
                assert app.screen is dialog, (key, text, box(app))
                assert expected in static_text(dialog, message_id), (key, text, static_text(dialog, message_id))
            await pilot.press("escape")
            await pilot.pause()
        assert len(app.screen_stack) == 1 and app._exception is None
    assert sorted(p.name for p in private_dirs.iterdir()) == before


@pilot_test
async def test_save_and_export_after_the_working_directory_was_deleted(private_dirs):
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await edit_w(pilot)
        private_dirs.rmdir()
        for key, message_id in (("ctrl+s", "#save-message"), ("E", "#export-message")):
            await pilot.press(key)
            await pilot.pause()
            await pilot.press("enter")  # the default, relative path
            await settle(pilot)
            assert "the current folder no longer exists" in static_text(app.screen, message_id)
            await pilot.press("escape")
            await pilot.pause()
        assert len(app.screen_stack) == 1 and app._exception is None


@pilot_test
async def test_a_5000_digit_step_count_is_a_message_on_the_training_screen():
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("n")
        await pilot.pause()
        for text in ("9" * 5000, "²", "１２"):
            app.screen.query_one("#train-steps").value = text
            await pilot.press("enter")
            await pilot.pause()
            assert "steps: a whole number from 1 to" in static_text(app.screen, "#train-message")
        assert app.session.steps_taken == 0 and app._exception is None


# ---------------------------------------------------------------- every explorer keeps its own autosave


def write_state(session: Session, instance: str, saved_at: str = "2026-01-02T03:04:05+00:00") -> Path:
    """A state file as an explorer that ended would have left it."""
    import json

    from backprop_tui.engine.autosave import state_dict

    doc = state_dict(session)
    doc["saved_at"] = saved_at
    path = state_path(session.preset, instance)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def ended_instance() -> str:
    """The instance name of an explorer that has ended: the id of a process that has exited."""
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return f"{int(child.stdout)}-0000000a"


def edited_session(value: float) -> Session:
    session = Session(load_preset(resolve_preset("linear_regression")))
    session.set_element("w", (), value)
    return session


@pilot_test
async def test_decide_next_time_keeps_the_old_autosave_and_the_next_start_offers_both():
    old = write_state(edited_session(1.5), ended_instance())
    before = old.read_bytes()
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await settle(pilot)
        assert box(app) == "restore-box"
        await pilot.press("escape")  # decide next time
        await pilot.pause()
        await edit_w(pilot, 2)  # w = 3.2: autosaved to this explorer's own file
        await pilot.pause(DEBOUNCE + 0.3)
        await settle(pilot)
        assert app.keeper.saves_written >= 1
        assert old.read_bytes() == before
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await settle(pilot)
        assert box(app) == "restore-box"
        text = str(app.screen.query_one(".choice-message").content)
        assert text.startswith("2 autosaved sessions of linear_regression")
        assert "\n1. from " in text and "\n2. from 2026-01-02 03:04:05 UTC: 1 leaf value(s) changed" in text
        await pilot.press("2")  # the older one
        await pilot.pause()
        assert app.session.values["w"].item() == 1.5
        await pilot.pause(DEBOUNCE + 0.3)
        await settle(pilot)
        assert not old.exists()  # held in this explorer's file now; the other one is kept
        assert len(list((data_dir() / "sessions").glob("*.json"))) == 2


@pilot_test
async def test_saved_at_from_the_file_is_drawn_printable():
    hostile = "\x1b]0;pwned\x07\x1b[2J2026\x9b31m"
    write_state(edited_session(1.5), ended_instance(), saved_at=hostile)
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await settle(pilot)
        assert box(app) == "restore-box"
        text = str(app.screen.query_one(".choice-message").content)
        assert "from an earlier run:" in text  # not a date: not shown
        assert all(ch.isprintable() or ch == "\n" for ch in text)


@pilot_test
async def test_a_failing_autosave_shows_its_reason_in_full_and_the_quit_question_says_the_edits_are_lost(tmp_path,
                                                                                                       monkeypatch):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    monkeypatch.setenv("BACKPROP_TUI_DATA_DIR", str(blocker / "data"))
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await settle(pilot)
        await edit_w(pilot)
        await pilot.pause(DEBOUNCE + 0.3)
        await settle(pilot)
        problem = app.keeper.last_problem
        assert problem == f"cannot autosave to {state_path(app.session.preset, app.keeper.instance)}: Not a directory"
        assert box(app) == "ErrorDialog" and problem in app.screen.message  # all of it, however long the path
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("plus")  # the same failure again: the status says it, no second dialog
        await pilot.pause(DEBOUNCE + 0.3)
        await settle(pilot)
        assert len(app.session.undo_stack) == 2 and len(app.screen_stack) == 1
        assert static_text(app, "#header-status").startswith("autosave failed: cannot autosave to")
        await pilot.press("ctrl+q")
        await pilot.pause()
        text = str(app.screen.query_one(".choice-message").content)
        assert "the autosave failed (cannot autosave to" in text and "so they are lost" in text
        assert "offers them next time" not in text


@pilot_test
async def test_with_autosave_off_nothing_is_written_and_the_quit_question_says_so():
    from backprop_tui.ui import BackpropApp

    app = BackpropApp("linear_regression", cursor_blink=False, autosave=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await edit_w(pilot)
        await pilot.pause(DEBOUNCE + 0.3)
        await settle(pilot)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert "autosave is off, so they are lost" in str(app.screen.query_one(".choice-message").content)
        await pilot.press("d")
        await pilot.pause()
    assert not (data_dir() / "sessions").exists()
