"""The explorer in served mode (what `serve` sets in each tab's environment): `o` and ctrl+s
refuse with a message, no autosave is read or written, export offers a download of the
same text; and ctrl+p finds every app-wide command the README lists."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from backprop_tui.serve.policy import DIR_ENV, SERVED_ENV, FilePolicy
from backprop_tui.ui.screens.export import export_text
from backprop_tui.ui.widgets.header import AppHeader

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ui"))
from ui_support import make_app, pilot_test, ready, settle  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def status(app) -> str:
    header = app.screen_stack[0].query_one(AppHeader)
    return " ".join(str(w.render()) for w in header.query("*")) + str(header.render())


@pilot_test
async def test_served_session_refuses_files_and_offers_export_as_a_download(monkeypatch, tmp_path):
    monkeypatch.setenv(SERVED_ENV, "1")
    monkeypatch.delenv(DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    app = make_app("linear_regression")
    delivered = []
    monkeypatch.setattr(app, "deliver_text", lambda file, **kw: delivered.append((file.read(), kw)))
    async with app.run_test(size=(120, 35)) as pilot:
        await ready(pilot)
        assert app.file_policy == FilePolicy(True, None)
        await pilot.press("o")
        await settle(pilot)
        assert len(app.screen_stack) == 1  # no path prompt
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert len(app.screen_stack) == 1
        await pilot.press("tab", "plus")
        await settle(pilot)
        await pilot.pause(1.0)  # past the autosave debounce: nothing may be written
        await settle(pilot)
        assert app.keeper.saves_written == 0
        await pilot.press("E")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert len(delivered) == 1
        text, options = delivered[0]
        assert text == export_text(app.session, "markdown")
        assert options["save_filename"] == "linear_regression.md"
    assert list(tmp_path.iterdir()) == []  # nothing written in the working directory


@pilot_test
async def test_served_session_with_a_directory_saves_inside_it_only(monkeypatch, tmp_path):
    root = tmp_path / "class"
    root.mkdir()
    monkeypatch.setenv(SERVED_ENV, "1")
    monkeypatch.setenv(DIR_ENV, str(root))
    monkeypatch.chdir(root)
    app = make_app("linear_regression")
    async with app.run_test(size=(120, 35)) as pilot:
        await ready(pilot)
        await pilot.press("E")
        await settle(pilot)
        field = app.screen.query_one("#export-path")
        field.value = "../escaped.md"
        await pilot.press("enter")
        await settle(pilot)
        assert "'..' leaves the served directory" in str(app.screen.query_one("#export-message").render())
        field.value = "notes.md"
        await pilot.press("enter")
        await settle(pilot)
    assert (root / "notes.md").read_text().startswith("# Linear regression")
    assert not (tmp_path / "escaped.md").exists()


def readme_everywhere_ids() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Everywhere", 1)[1].split("###", 1)[0]
    return re.findall(r"`(app\.\w+)` \|", section)


@pilot_test
async def test_the_palette_finds_every_command_the_readme_lists():
    app = make_app("linear_regression")
    async with app.run_test(size=(120, 35)) as pilot:
        await ready(pilot)
        titles = [command.title for command in app.get_system_commands(app.screen)]
    by_id = {b.id: b for b in app.BINDINGS}
    ids = readme_everywhere_ids()
    assert len(ids) >= 15
    for binding_id in ids:
        if binding_id in ("app.command_palette",):
            continue
        binding = by_id[binding_id]
        wanted = "Quit" if binding_id == "app.quit" else binding.description
        assert any(title.startswith(wanted) for title in titles), (binding_id, titles)
    for word in ("Loss slice", "Export", "Check grads", "Undo", "Save", "Train", "Theme"):
        assert any(word.lower() in title.lower() for title in titles), word


@pilot_test
async def test_a_palette_command_runs_its_action():
    app = make_app("linear_regression")
    async with app.run_test(size=(120, 35)) as pilot:
        await ready(pilot)
        command = next(c for c in app.get_system_commands(app.screen) if c.title.startswith("SGD step"))
        command.callback()
        await settle(pilot)
        assert app.session.steps_taken == 1
