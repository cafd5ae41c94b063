"""SIGTERM and SIGHUP: the explorer writes its pending autosave and gives the terminal back.

A real explorer in a pseudo-terminal (benchmarks/terminal.py), edited with keys; the signal
arrives before the autosave's debounce has fired, so only the signal's handler can write it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from benchmarks.terminal import Session as Terminal  # noqa: E402

from backprop_tui.engine import Session, load_preset, resolve_preset  # noqa: E402
from backprop_tui.engine.numbers import fmt  # noqa: E402

LEAVE_ALTERNATE_SCREEN = b"\x1b[?1049l"
MOUSE_OFF = b"\x1b[?1000l"
TAB, HOME, DOWN = b"\t", b"\x1b[H", b"\x1b[B"


@pytest.mark.parametrize("signum, quit_question", [(signal.SIGTERM, False), (signal.SIGHUP, False),
                                                   (signal.SIGHUP, True)])
def test_a_signal_writes_the_pending_autosave_and_restores_the_terminal(tmp_path, signum, quit_question):
    data = tmp_path / "data"
    env = {**os.environ, "BACKPROP_TUI_DATA_DIR": str(data), "TEXTUAL_ANIMATIONS": "none"}
    env.pop("BACKPROP_TUI_AUTOSAVE", None)
    session = Session(load_preset(resolve_preset("linear_regression")))
    start = session.values["w"].item()
    loaded = f"J = {fmt(session.snapshot.loss)}"
    for _ in range(3):  # what the header shows after three nudges of w by its step, 0.1
        session.set_element("w", (), session.values["w"].item() + 0.1)
    nudged = f"J = {fmt(session.snapshot.loss)}"
    terminal = Terminal([sys.executable, "-m", "backprop_tui", "linear_regression"], env=env)
    try:
        terminal.wait_for(loaded, timeout=120)
        terminal.settle(1.0)
        leaves = [leaf.name for leaf in session.preset.leaves]
        terminal.key(TAB + HOME + DOWN * leaves.index("w") + TAB)
        terminal.settle(0.3)
        terminal.key(b"+++", marker=nudged.split(" = ")[1], quiet=0.01)  # drawn, autosave still pending
        if quit_question:  # the terminal closes while the quit question is open
            shown, _, _ = terminal.key(b"\x11", marker="Quit with unsaved edits?", quiet=0.01)
            assert shown is not None
        os.kill(terminal.proc.pid, signum)
        for _ in range(600):  # at most 30 s; the explorer ends in a few
            terminal.stream += terminal._read(0.05)
            if terminal.proc.poll() is not None:
                break
    finally:
        if terminal.proc.poll() is None:
            terminal.proc.kill()
            terminal.proc.wait()
    assert terminal.proc.returncode == 128 + signum
    tail = terminal.stream[-4000:]
    assert LEAVE_ALTERNATE_SCREEN in tail and MOUSE_OFF in tail
    files = list((data / "sessions").glob("*.json"))
    assert len(files) == 1
    saved = json.loads(files[0].read_text(encoding="utf-8"))
    assert saved["values"]["w"] == pytest.approx(start + 0.3)  # all three keys, the last one too
