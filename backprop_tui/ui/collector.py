"""When Python's full garbage collection runs: once edits pause, not in the middle of one.

A full (generation 2) collection walks every tracked object the explorer made since
torch was imported (torch's own are frozen: engine.import_torch); with a big preset open
it costs more than an edit. The automatic full collections are put off (the thresholds
are set where the explorer starts: backprop_tui.process) and one runs when no edit has
come for `IDLE` seconds.
"""

from __future__ import annotations

import gc
import time
from typing import Callable

from backprop_tui.ui.debounce import Debounce, Timers

IDLE = 1.0  # seconds without an edit before the full collection


class Collector:
    def __init__(self, app: Timers, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self._idle = Debounce(app, IDLE, gc.collect, "collector", clock)

    def edited(self) -> None:
        """An edit was handled: collect in full once edits pause."""
        self._idle.poke()
