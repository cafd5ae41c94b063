"""When Python's full garbage collection runs: once edits pause, not in the middle of one.

A full (generation 2) collection walks every tracked object the explorer made since
torch was imported (torch's own are frozen: engine.import_torch). With a 500-node
preset open that takes 40-75 ms, and the automatic ones fell inside edits (about one
in seven on deep_chain), each time doubling that edit's latency. So the automatic
full collections are put off and one runs when no edit has come for `IDLE` seconds.

The youngest generation is collected every YOUNG allocations instead of Python's 700:
an edit allocates thousands of short-lived objects (labels, strips, styles), so at 700
it ran 1.6 young collections an edit, which walked the objects still alive at that
moment and promoted them to the middle generation, walked again later: 0.56 ms of
simple_nn's edit (deep_chain: 2.4 ms). At YOUNG: 0.06 of a collection an edit, 0.21 ms
(deep_chain 1.4 ms).
"""

from __future__ import annotations

import gc
import time
from typing import Callable

from backprop_tui.ui.debounce import Debounce, Timers

IDLE = 1.0  # seconds without an edit before the full collection
YOUNG = 10_000  # allocations between young collections (Python's default: 700)
FULL_EVERY = 1000  # generation-1 collections between automatic full ones (Python's default: 10)


class Collector:
    def __init__(self, app: Timers, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self._idle = Debounce(app, IDLE, gc.collect, "collector", clock)
        _, middle, _ = gc.get_threshold()
        gc.set_threshold(YOUNG, middle, FULL_EVERY)

    def edited(self) -> None:
        """An edit was handled: collect in full once edits pause."""
        self._idle.poke()
