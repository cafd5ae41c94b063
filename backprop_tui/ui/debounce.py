"""`Debounce`: call back once a stream of pokes has been quiet for a while.

The autosave and the idle garbage collection each wait for edits to pause. Stopping a
Textual timer and starting a new one on every edit made and cancelled an asyncio task
each time (about 0.15 ms of an edit for the two). A Debounce keeps one timer per quiet
spell: a poke only moves the due time, and the timer, when it fires early, waits for
the rest.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from textual.app import App
    from textual.timer import Timer


class Debounce:
    def __init__(self, app: "App", delay: float, callback: Callable[[], object], name: str) -> None:
        self.app = app
        self.delay = delay
        self.callback = callback
        self.name = name
        self._due: float | None = None  # monotonic time of the call, while one is pending
        self._timer: "Timer | None" = None

    @property
    def pending(self) -> bool:
        return self._due is not None

    def poke(self) -> None:
        """Call back `delay` seconds from now, unless poked again before."""
        self._due = time.monotonic() + self.delay
        if self._timer is None:
            self._timer = self.app.set_timer(self.delay, self._fire, name=self.name)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self._due = None

    def _fire(self) -> None:
        self._timer = None
        if self._due is None:
            return
        left = self._due - time.monotonic()
        if left > 0.001:  # poked since this timer started: wait for the rest
            self._timer = self.app.set_timer(left, self._fire, name=self.name)
            return
        self._due = None
        self.callback()
