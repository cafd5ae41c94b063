"""A 1,000-step SGD run on mlp_784 while the UI keeps answering, and its cancel.

Through Textual's Pilot at 100x30: `n` opens the training screen, 1000 and enter start
the run (a thread worker). While it runs, a probe in the app's event loop sleeps 5 ms
at a time and records how late it wakes up: a frame stall is a wake-up later than 50 ms.
A second run is cancelled with `c` half a second in; the figure is the time from the key
to the run's end. Targets (issue 6): no stall over 50 ms; cancellable.
"""

from __future__ import annotations

import asyncio
import os
import time

from benchmarks.common import Figure, figure, log

PRESET = "mlp_784"
STEPS = 1000
PROBE = 0.005


def available() -> bool:
    try:
        from backprop_tui.ui import BackpropApp  # noqa: F401
        from backprop_tui.ui.screens.training import TrainingScreen  # noqa: F401
    except ImportError:
        return False
    return True


async def _open_training(app, pilot, steps: int):
    from backprop_tui.ui.screens.training import TrainingScreen

    await pilot.press("n")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, TrainingScreen), f"n opened {screen!r}"
    field = screen.query_one("#train-steps")
    field.value = str(steps)
    await pilot.pause()
    return screen


async def measure() -> tuple[list[float], float, float, float]:
    """Probe delays (s) during a full run, the run's duration, cancel latency, steps done before cancel."""
    from backprop_tui.ui import BackpropApp

    app = BackpropApp(PRESET, cursor_blink=False)
    async with app.run_test(size=(100, 30)) as pilot:
        while app.session is None:
            await pilot.pause(0.05)
        await app.workers.wait_for_complete()
        screen = await _open_training(app, pilot, STEPS)
        delays: list[float] = []
        start = time.perf_counter()
        await pilot.press("enter")
        while screen.running or not delays:
            before = time.perf_counter()
            await asyncio.sleep(PROBE)
            delays.append(time.perf_counter() - before - PROBE)
        duration = time.perf_counter() - start
        assert screen.result is not None and screen.result.completed == STEPS, screen.result
        # a second run, cancelled
        screen.query_one("#train-steps").value = str(STEPS)
        await pilot.pause()
        await pilot.press("enter")
        await asyncio.sleep(0.5)
        pressed = time.perf_counter()
        await pilot.press("c")
        while screen.running:
            await asyncio.sleep(PROBE)
        cancel = time.perf_counter() - pressed
        done = screen.result.completed if screen.result is not None else -1
    return delays, duration, cancel, done


def run(quick: bool = False) -> list[Figure]:
    if not available():
        log("training: the training screen does not exist yet; skipped")
        return []
    os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
    log(f"training: {STEPS} SGD steps on {PRESET}")
    delays, duration, cancel, done = asyncio.run(measure())
    ms = [d * 1e3 for d in delays]
    worst = max(ms)
    return [
        figure("SGD run (1,000 steps on mlp_784)", "event-loop wake-up delay while training, median", ms, "ms",
               note=f"run took {duration:.1f} s; {len(ms)} probes; longest {worst:.0f} ms"),
        Figure("SGD run (1,000 steps on mlp_784)", "longest event-loop stall while training", worst, worst, worst,
               "ms", len(ms), 50.0, "≤ 50 ms", f"{sum(1 for x in ms if x > 50)} probes over 50 ms"),
        Figure("SGD run (1,000 steps on mlp_784)", "cancel: key c → run stopped", cancel * 1e3, cancel * 1e3,
               cancel * 1e3, "ms", 1, None, "", f"stopped after {done} of {STEPS} steps, which were kept"),
    ]


if __name__ == "__main__":
    for f in run():
        print(f"{f.name}: {f.median:.1f} {f.unit} {f.verdict} {f.note}")
