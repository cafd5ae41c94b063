"""Monkey test: seeded random keys through Pilot, the explorer's end-to-end path.

That random edits leave the session equal to a fresh computation is tested on the
Session itself, in milliseconds (tests/engine/test_session_stateful.py); this run keeps
the keyboard, the screens and the drawing in the loop with a few hundred keys.

Keys: digits, letters (every screen's key: help, picker, file prompt, learning rate, save,
and the other dialogs), Enter, Escape, arrows, tab, + - [ ], ctrl+z, ctrl+y, ctrl+s, and
more; never ctrl+q. Afterwards: no exception escaped, and the numbers the app shows and
holds equal a fresh engine computation (a new Session on the same preset, given the
final leaf values and requires_grad flags with `apply_state`).

The working directory is a temporary folder (ctrl+s, exports write there) and so is the
data directory (autosave): nothing outside tmp_path is written.
"""

from __future__ import annotations

import random
import string
import zlib

import numpy as np
from textual import events
from ui_support import grid_cells, make_app, pilot_test, ready, static_text

from backprop_tui.engine import Session
from backprop_tui.ui.format import value_number
from backprop_tui.ui.widgets.weight_editor import PAGE_SIZE, WeightEditor

SIZE = (100, 30)
PRESET = "simple_nn"  # modules, several leaves, relu kinks: every panel has something to show
KEYS_IN_RUN = 300
BATCH = 10  # keys sent before waiting for the app to be idle

# (key, weight): editing and moving keys more often than the screens' letters
WEIGHTED = (
    [(k, 3) for k in ("up", "down", "tab", "enter", "escape", "plus", "minus")]
    + [(k, 2) for k in ("left", "right", "shift+tab", "ctrl+z", "ctrl+y", "s", "g", "r", "left_square_bracket",
                        "right_square_bracket", "backspace")]
    + [(k, 1) for k in ("R", "home", "end", "pageup", "pagedown", "space", "period", "question_mark",
                        "less_than_sign", "greater_than_sign", "ctrl+s", "ctrl+u")]
    + [(d, 1) for d in string.digits]
    + [(c, 1) for c in string.ascii_letters if c not in "sgrR"]
)
KEYS = [k for k, _ in WEIGHTED]
KEY_CHARACTERS = {"plus": "+", "minus": "-", "left_square_bracket": "[", "right_square_bracket": "]", "space": " ",
                  "period": ".", "question_mark": "?", "less_than_sign": "<", "greater_than_sign": ">"}
WEIGHTS = [w for _, w in WEIGHTED]


def sequence(preset: str, n: int) -> list[str]:
    rng = random.Random(zlib.crc32(preset.encode()))  # seeded: the same keys on every run
    return rng.choices(KEYS, WEIGHTS, k=n)


async def type_keys(pilot, keys: list[str]) -> None:
    """Like pilot.press, but as a fast typist: the keys go through the driver one after
    the other, and the test waits once for the app to be idle (pilot.press waits twice
    per key, about 50 ms on a busy machine)."""
    app = pilot.app
    for key in keys:
        char = KEY_CHARACTERS.get(key, key if len(key) == 1 else None)
        event = events.Key(key, char)
        event.set_sender(app)
        app._driver.send_message(event)
    await pilot.pause()


async def settle(pilot) -> None:
    app = pilot.app
    for _ in range(100):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not app.preset_pending:
            break
        await pilot.pause(0.05)


@pilot_test
async def test_random_keys_leave_the_screen_equal_to_a_fresh_computation(tmp_path, monkeypatch, record_property):
    monkeypatch.chdir(tmp_path)
    preset = PRESET
    keys = sequence(preset, KEYS_IN_RUN)
    record_property("tried", len(keys))  # counted by tests/robustness/report.py
    app = make_app(preset)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screens_seen: set[str] = set()
        for start in range(0, len(keys), BATCH):
            await type_keys(pilot, keys[start:start + BATCH])
            screens_seen.update(type(s).__name__ for s in app.screen_stack)
            assert app._exception is None, keys[max(0, start - BATCH):start + BATCH]
            if start % 100 == 0:
                await settle(pilot)
        await settle(pilot)
        for _ in range(10):  # close whatever dialog the last keys opened
            if len(app.screen_stack) == 1:
                break
            await pilot.press("escape")
            await settle(pilot)
        assert len(app.screen_stack) == 1, [type(s).__name__ for s in app.screen_stack]
        app.query_one(WeightEditor).query_one("#edit-input").blur()
        await settle(pilot)  # no forced redraw: every edit has drawn the session's snapshot by now
        assert app._exception is None

        session = app.session
        record_property("screens", ",".join(sorted(screens_seen)))
        record_property("edits", len(session.undo_stack))
        fresh = Session(session.preset)
        fresh.apply_state({k: v.clone() for k, v in session.values.items()}, dict(session.requires_grad), "monkey")
        ours, theirs = session.snapshot, fresh.snapshot
        assert [n.name for n in ours.nodes] == [n.name for n in theirs.nodes]
        for a, b in zip(ours.nodes, theirs.nodes):
            np.testing.assert_allclose(a.value, b.value, rtol=1e-6, atol=0, equal_nan=True, err_msg=a.name)
            assert (a.grad is None) == (b.grad is None), a.name
            if a.grad is not None:
                np.testing.assert_allclose(a.grad, b.grad, rtol=1e-5, atol=1e-7, equal_nan=True, err_msg=a.name)
        # on screen: the header's output value and the weight grid's cells
        header = static_text(app, "#header-output").strip()
        assert header.startswith(f"{theirs.output} = {value_number(theirs.loss).plain}"), header
        editor = app.query_one(WeightEditor)
        node = theirs.node(editor.leaf)
        flat = node.value.reshape(-1)[editor.page * PAGE_SIZE:(editor.page + 1) * PAGE_SIZE]
        cells = grid_cells(app)
        assert len(cells) == len(flat)
        for (index, shown, _grad), x in zip(cells, flat):
            assert shown.split(" Δ")[0] == value_number(x).plain, (editor.leaf, index, shown, x)
        record_property("held", len(keys))
