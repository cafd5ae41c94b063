"""`Debounce`: call back once a stream of pokes has been quiet for a while.

The autosave and the idle garbage collection each wait for edits to pause. Stopping a
Textual timer and starting a new one on every edit made and cancelled an asyncio task
each time. A Debounce keeps one timer per quiet spell: a poke only moves the due time,
and the timer, when it fires early, waits for the rest.

The clock and the timers are given, so a test can drive both by hand.
"""

from __future__ import annotations

import time
from typing import Callable, Protocol


class Stoppable(Protocol):
    def stop(self) -> object: ...


class Timers(Protocol):
    """What schedules the timer: a Textual App or widget (their `set_timer`), or a test's fake."""

    def set_timer(self, delay: float, callback: Callable[[], object], *, name: str | None = None) -> Stoppable: ...


class Debounce:
    def __init__(
        self,
        timers: Timers,
        delay: float,
        callback: Callable[[], object],
        name: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timers = timers
        self.delay = delay
        self.callback = callback
        self.name = name
        self.clock = clock  # the timers' clock: Textual's timers run on monotonic time
        self._due: float | None = None  # the clock's time of the call, while one is pending
        self._timer: Stoppable | None = None

    @property
    def pending(self) -> bool:
        return self._due is not None

    def poke(self) -> None:
        """Call back `delay` seconds from now, unless poked again before."""
        self._due = self.clock() + self.delay
        if self._timer is None:
            self._timer = self.timers.set_timer(self.delay, self._fire, name=self.name)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self._due = None

    def _fire(self) -> None:
        self._timer = None
        if self._due is None:
            return
        left = self._due - self.clock()
        if left > 0.001:  # poked since this timer started: wait for the rest
            self._timer = self.timers.set_timer(left, self._fire, name=self.name)
            return
        self._due = None
        self.callback()
