"""ctrl+q or ctrl+c while a preset is still loading ends the explorer at once.

The load runs in a daemon thread of the app's own: Textual's thread workers run in
asyncio's default executor, which the app's shutdown and the interpreter's exit wait for,
so a long load used to keep the process computing after the screen was cleared.
"""

from __future__ import annotations

import threading

import pytest

from ui_support import make_app, pilot_test

import backprop_tui.engine as engine


@pytest.mark.parametrize("key", ["ctrl+q", "ctrl+c"])
@pilot_test
async def test_ctrl_q_during_a_load_leaves_the_load_behind(monkeypatch, key):
    entered, release = threading.Event(), threading.Event()
    seen: dict[str, bool] = {}
    real_session = engine.Session

    def slow_session(preset):
        seen["daemon"] = threading.current_thread().daemon
        entered.set()
        release.wait(10)  # a load that takes long (bounded, should the test fail)
        return real_session(preset)

    monkeypatch.setattr(engine, "Session", slow_session)
    app = make_app("scalar_chain")
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            for _ in range(400):
                if entered.is_set():
                    break
                await pilot.pause(0.05)
            assert entered.is_set() and app.preset_pending
            await pilot.press(key)
            await pilot.pause()
        # the app has closed while the load is still inside Session(...)
        assert not release.is_set() and app.session is None
        assert app.return_code is not None
        assert seen["daemon"], "the load ran in a thread the process exit waits for"
    finally:
        release.set()


@pilot_test
async def test_ctrl_c_once_loaded_only_reminds_that_ctrl_q_quits():
    from ui_support import ready

    app = make_app("scalar_chain")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert app.return_code is None and app.session is not None
