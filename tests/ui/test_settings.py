"""The theme picked in the command palette is remembered for the next run (ui/settings.py)."""

from __future__ import annotations

import json

from ui_support import pilot_test, ready, settle

from backprop_tui.engine.locations import data_dir
from backprop_tui.ui import BackpropApp
from backprop_tui.ui.settings import SETTINGS_FILE, remembered_theme


def _app(**kwargs) -> BackpropApp:
    return BackpropApp("scalar_chain", cursor_blink=False, remember_theme=True, **kwargs)


@pilot_test
async def test_a_theme_picked_in_the_palette_is_the_next_runs_theme():
    app = _app()
    assert app.theme == "textual-dark"  # nothing remembered yet
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+p", *"theme", "enter")  # Textual's own theme picker
        await settle(pilot)
        await pilot.press(*"textual-light", "enter")
        await settle(pilot)
        assert app.theme == "textual-light"
    assert json.loads((data_dir() / SETTINGS_FILE).read_text()) == {"theme": "textual-light"}
    assert _app().theme == "textual-light"


def test_an_unknown_or_malformed_setting_means_the_default():
    folder = data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for text in ('{"theme": "no-such-theme"}', "{", '["textual-light"]', '{"theme": 7}', "\x00" * 20_000):
        (folder / SETTINGS_FILE).write_text(text)
        assert _app().theme == "textual-dark"
    (folder / SETTINGS_FILE).write_text('{"theme": "nord"}')
    assert remembered_theme() == "nord" and _app().theme == "nord"


@pilot_test
async def test_tests_and_served_sessions_do_not_write_the_setting(monkeypatch):
    from backprop_tui.serve.policy import SERVED_ENV

    app = BackpropApp("scalar_chain", cursor_blink=False)  # as the tests make it: nothing remembered
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        app.theme = "textual-light"
        await settle(pilot)
    monkeypatch.setenv(SERVED_ENV, "1")
    app = _app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        app.theme = "textual-light"
        await settle(pilot)
    assert not (data_dir() / SETTINGS_FILE).exists()
