"""The server's pieces that need no browser: the idle clock and the command each tab runs."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from backprop_tui.serve.server import IDLE_SECONDS, IdleClock, app_command


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_is_idle_an_hour_after_its_last_key():
    clock = FakeClock()
    idle = IdleClock(IDLE_SECONDS, clock)
    assert IDLE_SECONDS == 3600 and idle.remaining() == 3600
    clock.now += 3000
    assert idle.remaining() == 600
    idle.touch()  # a key
    assert idle.remaining() == 3600
    clock.now += 3600
    assert idle.remaining() <= 0


def test_the_tab_command_quotes_what_it_is_given(tmp_path):
    odd = tmp_path / "my presets; rm -rf x" / "a b.toml"
    words = shlex.split(app_command(str(odd)))
    assert words == [sys.executable, "-m", "backprop_tui", str(odd)]
    words = shlex.split(app_command("simple_nn", Path("/srv/a class")))
    assert words[:3] == ["cd", "/srv/a class", "&&"] and words[3:] == [
        sys.executable,
        "-m",
        "backprop_tui",
        "simple_nn",
    ]
