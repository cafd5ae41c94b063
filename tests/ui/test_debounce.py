"""Debounce: one call once the pokes stop, never before `delay` after the last one."""

from __future__ import annotations

import asyncio
import time

from textual.app import App

from ui_support import pilot_test

from backprop_tui.ui.debounce import Debounce


@pilot_test
async def test_a_debounce_calls_once_delay_after_the_last_poke():
    calls: list[float] = []
    app = App()
    async with app.run_test():
        debounce = Debounce(app, 0.2, lambda: calls.append(time.monotonic()), "test")
        for _ in range(5):  # pokes closer together than the delay
            debounce.poke()
            last = time.monotonic()
            await asyncio.sleep(0.05)
        assert calls == [] and debounce.pending
        for _ in range(100):  # however loaded the machine, it comes
            if calls:
                break
            await asyncio.sleep(0.05)
        assert len(calls) == 1 and calls[0] - last >= 0.2 - 0.002
        assert not debounce.pending
        await asyncio.sleep(0.3)
        assert len(calls) == 1  # no more pokes, no more calls


@pilot_test
async def test_a_cancelled_debounce_does_not_call():
    calls = []
    app = App()
    async with app.run_test():
        debounce = Debounce(app, 0.05, lambda: calls.append(1), "test")
        debounce.poke()
        debounce.cancel()
        assert not debounce.pending
        await asyncio.sleep(0.2)
        assert calls == []
