"""Snapshots of the robustness dialogs: the quit question, the save dialog, the restore offer.

Deterministic like tests/ui/test_snapshots.py (fixed theme, no blinking cursor,
TEXTUAL_ANIMATIONS=none, workers waited); the autosave's time is fixed in the file.
"""

from __future__ import annotations

import json
import os

import pytest
from ui_support import make_app, ready, select_leaf, settle

from backprop_tui.engine import Session, load_preset, resolve_preset
from backprop_tui.engine.autosave import state_dict, state_path

os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
SIZE = (100, 30)


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKPROP_TUI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)


def test_quit_question(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await select_leaf(pilot, "w")
        await pilot.press("plus", "ctrl+q")
        await settle(pilot)

    assert snap_compare(make_app("linear_regression"), terminal_size=SIZE, run_before=run_before)


def test_save_dialog(snap_compare):
    async def run_before(pilot):
        await ready(pilot)
        await select_leaf(pilot, "w")
        await pilot.press("plus", "ctrl+s")
        await settle(pilot)

    assert snap_compare(make_app("linear_regression"), terminal_size=SIZE, run_before=run_before)


def test_restore_offer(snap_compare):
    session = Session(load_preset(resolve_preset("simple_nn")))
    session.step()
    session.step()
    doc = state_dict(session)
    doc["saved_at"] = "2026-01-02T03:04:05+00:00"
    path = state_path(session.preset)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(doc), encoding="utf-8")

    async def run_before(pilot):
        await ready(pilot)
        await settle(pilot)

    assert snap_compare(make_app("simple_nn"), terminal_size=SIZE, run_before=run_before)
