"""Debounce: one call once the pokes stop, never before `delay` after the last one; and
the collector built on it: a full garbage collection once the edits pause, not during them.

The clock and the timers are a fake the test moves by hand (`ManualTimers`), so nothing
here depends on how fast the machine is; one test runs the explorer's collector on Textual's own timers.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Callable

from ui_support import make_app, open_leaf, pilot_test, ready

from backprop_tui.ui import collector as collector_module
from backprop_tui.ui.collector import Collector
from backprop_tui.ui.debounce import Debounce


@dataclass
class ManualTimer:
    due: float
    callback: Callable[[], object]
    name: str | None
    stopped: bool = False

    def stop(self) -> None:
        self.stopped = True


@dataclass
class ManualTimers:
    """One-shot timers on a clock that moves only when `advance` is called."""

    now: float = 1000.0
    timers: list[ManualTimer] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def set_timer(self, delay: float, callback: Callable[[], object], *, name: str | None = None) -> ManualTimer:
        timer = ManualTimer(self.now + delay, callback, name)
        self.timers.append(timer)
        return timer

    @property
    def waiting(self) -> list[ManualTimer]:
        return [t for t in self.timers if not t.stopped]

    def advance(self, seconds: float) -> None:
        """Move the clock on, firing each timer due on the way at its own due time."""
        end = self.now + seconds
        while True:
            due = sorted((t for t in self.timers if not t.stopped and t.due <= end), key=lambda t: t.due)
            if not due:
                break
            timer = due[0]
            timer.stopped = True  # one-shot
            self.now = max(self.now, timer.due)
            timer.callback()
        self.now = end


def test_a_debounce_calls_once_delay_after_the_last_poke():
    timers = ManualTimers()  # times below are binary fractions: exact in floating point
    calls: list[float] = []
    debounce = Debounce(timers, 0.25, lambda: calls.append(timers.now), "test", clock=timers.clock)
    for _ in range(5):  # pokes closer together than the delay
        debounce.poke()
        last = timers.now
        timers.advance(0.0625)
    assert calls == [] and debounce.pending
    timers.advance(0.25 - 0.0625 - 0.0078125)  # short of delay after the last poke
    assert calls == [] and debounce.pending
    timers.advance(0.0078125)
    assert calls == [last + 0.25]
    assert not debounce.pending
    timers.advance(10)
    assert calls == [last + 0.25]  # no more pokes, no more calls
    # one timer for the spell, re-armed only when it fired early: not one per poke
    assert len(timers.timers) <= 3
    assert all(t.name == "test" for t in timers.timers)


def test_a_poke_after_the_call_starts_a_new_spell():
    timers = ManualTimers()
    calls: list[float] = []
    debounce = Debounce(timers, 1.0, lambda: calls.append(timers.now), "test", clock=timers.clock)
    debounce.poke()
    timers.advance(1.0)
    start = timers.now
    debounce.poke()
    timers.advance(0.5)
    assert calls == [start]
    timers.advance(0.5)
    assert calls == [start, start + 1.0]


def test_a_cancelled_debounce_does_not_call():
    timers = ManualTimers()
    calls = []
    debounce = Debounce(timers, 0.05, lambda: calls.append(1), "test", clock=timers.clock)
    debounce.poke()
    debounce.cancel()
    assert not debounce.pending
    assert not timers.waiting  # the timer was stopped, not left to fire
    timers.advance(10)
    assert calls == []


def test_full_garbage_collections_wait_for_a_pause_in_the_edits(monkeypatch):
    collected: list[float] = []
    timers = ManualTimers()
    monkeypatch.setattr(gc, "collect", lambda *args: collected.append(timers.now) or 0)
    collector = Collector(timers, clock=timers.clock)
    for _ in range(3):  # edits keep coming, closer than IDLE: not yet
        collector.edited()
        last = timers.now
        timers.advance(collector_module.IDLE / 2)
        assert collected == []
    timers.advance(collector_module.IDLE)
    assert collected == [last + collector_module.IDLE]  # one full collection once they paused
    timers.advance(10 * collector_module.IDLE)
    assert len(collected) == 1


@pilot_test
async def test_the_explorer_tells_its_collector_of_each_edit_and_collects_on_textual_timers(monkeypatch):
    """End to end: each edit pokes the collector, whose Debounce runs on the App's own
    timers and monotonic clock, and the full collection comes (no time is asserted)."""
    collected: list[int] = []
    edits: list[int] = []
    monkeypatch.setattr(collector_module, "IDLE", 0.01)
    monkeypatch.setattr(gc, "collect", lambda *args: collected.append(1) or 0)
    edited = Collector.edited
    monkeypatch.setattr(Collector, "edited", lambda self: edits.append(1) or edited(self))
    app = make_app("scalar_chain")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await open_leaf(pilot, "x")
        edits.clear()
        collected.clear()
        await pilot.press("+", "-", "+")
        assert len(edits) == 3 and len(app.session.undo_stack) == 3
        for _ in range(1000):  # however loaded the machine, it comes
            if collected:
                break
            await pilot.pause(0.01)
        assert collected
