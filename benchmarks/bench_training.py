"""A 1,000-step SGD run on mlp_784 while the UI keeps answering, and its cancel.

Through Textual's Pilot at 100x30, with keys: `n` opens the training screen, 1000 and
enter start the run (a thread worker). The probe lives in the app: a timer installed
with `app.set_interval` every PROBE seconds, run by the app's own event loop, records
how late each tick fires (the time since the tick before, minus PROBE). A frame stall is
a tick more than 50 ms late: for that long the app could neither read a key nor draw.
The ticks are kept from the enter that starts the run until the run's end is handled and
drawn (the result applied and shown, the explorer's panels refreshed and drawn: two
refreshes of the app after the screen's running flag drops). The second that follows is
watched on its own and reported for information: what an edit of mlp_784 sets off in the
explorer (the inspector's analyses, the autosave 0.5 s later), not part of the run.

After each full run a second one is started and cancelled with `c` half a second in;
the cancel figure is the time from the key to the run's end handled by the screen.

Each round is one full run and one cancelled run in the same app; `--quick` does fewer
rounds. Targets (issue 6): no stall over 50 ms; cancellable.

    python -m benchmarks.bench_training [--quick]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time

from benchmarks.common import Figure, figure, log, quantile

PRESET = "mlp_784"
STEPS = 1000
PROBE = 0.005  # seconds between the probe's ticks
STALL = 50.0  # ms: a tick later than this is a frame stall
CANCEL_AFTER = 0.5  # seconds into the second run
AFTER = 1.0  # seconds after the run's end watched on their own (info: not "while it runs")
GROUP = "SGD run (1,000 steps on mlp_784)"


def available() -> bool:
    try:
        from backprop_tui.ui import BackpropApp  # noqa: F401
        from backprop_tui.ui.screens.training import TrainingScreen  # noqa: F401
    except ImportError:
        return False
    return True


class Probe:
    """A timer of the app's event loop; `lateness` (s) of every tick while `recording`."""

    def __init__(self, app) -> None:
        self.lateness: list[float] = []
        self.at: list[float] = []  # when each tick fired (perf_counter)
        self.recording = False
        self._last = time.perf_counter()
        self.timer = app.set_interval(PROBE, self._tick, name="stall-probe")

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.recording:
            self.lateness.append(max(0.0, now - self._last - PROBE))
            self.at.append(now)
        self._last = now

    def start(self) -> None:
        self._last = time.perf_counter()
        self.lateness = []
        self.at = []
        self.recording = True

    def stop(self) -> list[float]:
        # the wait since the last tick counts too (a stall at the very end)
        now = time.perf_counter()
        self.lateness.append(max(0.0, now - self._last - PROBE))
        self.at.append(now)
        self.recording = False
        return self.lateness


async def _ready(app, pilot) -> None:
    """The preset loaded, its workers done, and the explorer's own screen on top."""
    for _ in range(1200):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not app.preset_pending:
            break
        await pilot.pause(0.05)
    if app.preset_pending or app.session is None:
        raise RuntimeError(f"{PRESET} did not load within 60 s")
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()
    if len(app.screen_stack) != 1:
        raise RuntimeError(f"another screen is on top of the explorer: {app.screen!r}")


async def _frames(app, count: int) -> None:
    """Wait until the app has refreshed the screen `count` times more."""
    for _ in range(count):
        done = asyncio.Event()
        app.call_after_refresh(done.set)
        await asyncio.wait_for(done.wait(), 30)


async def _wait_until_done(screen, limit: float) -> None:
    deadline = time.perf_counter() + limit
    while screen.running:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"the run did not end within {limit:.0f} s")
        await asyncio.sleep(0.01)


async def _start_run(pilot, screen, steps: int, probe: Probe | None = None) -> float:
    """Type the number of steps into the (empty) field and press enter, as a user does.

    The probe starts recording at the enter; returns when that was (perf_counter)."""
    await pilot.press("end", "ctrl+u", *str(steps))
    await pilot.pause()
    if probe is not None:
        probe.start()
    start = time.perf_counter()
    # enter is sent without waiting for the screen to settle: while the run goes on the
    # screen has messages to handle, and what the run does to the loop is what is measured
    asyncio.get_running_loop().create_task(pilot.press("enter"))
    deadline = time.perf_counter() + 10
    while not screen.running:
        if time.perf_counter() > deadline:
            raise RuntimeError("enter did not start the run")
        await asyncio.sleep(0.001)
    return start


async def measure(rounds: int) -> list[dict]:
    """Per round: tick lateness (s) during a full run, its duration, the cancel's latency and steps done."""
    from backprop_tui.ui import BackpropApp
    from backprop_tui.ui.screens.training import TrainingProgress, TrainingScreen

    app = BackpropApp(PRESET, cursor_blink=False)
    out = []
    posted = [0]

    def hook(message) -> None:  # every message the app's nodes handle: count the run's progress
        if isinstance(message, TrainingProgress):
            posted[0] += 1

    async with app.run_test(size=(100, 30), message_hook=hook) as pilot:
        await _ready(app, pilot)
        await pilot.press("n")
        await pilot.pause()
        screen = app.screen
        if not isinstance(screen, TrainingScreen):
            raise RuntimeError(f"n opened {screen!r}, not the training screen")
        probe = Probe(app)
        for r in range(rounds):
            await pilot.pause(0.2)
            posted[0] = 0
            start = await _start_run(pilot, screen, STEPS, probe)
            await _wait_until_done(screen, 300)
            await _frames(app, 2)  # the result drawn, the explorer's panels refreshed and drawn
            duration = time.perf_counter() - start
            lateness = probe.stop()
            at = probe.at
            probe.start()
            await asyncio.sleep(AFTER)  # what the run's end sets off: analyses, autosave
            after = probe.stop()
            result = screen.result
            if result is None or result.completed != STEPS:
                raise RuntimeError(f"the run did not complete {STEPS} steps: {result!r}")
            messages = posted[0]
            # the same run, cancelled with `c`
            await pilot.pause(0.2)
            await _start_run(pilot, screen, STEPS)
            await asyncio.sleep(CANCEL_AFTER)
            if not screen.running:
                raise RuntimeError(f"the run to cancel ended within {CANCEL_AFTER} s")
            pressed = time.perf_counter()
            await pilot.press("c")
            await _wait_until_done(screen, 60)
            await _frames(app, 1)
            cancel = time.perf_counter() - pressed
            result = screen.result
            if result is None or result.stopped != "cancelled" or not 0 < result.completed < STEPS:
                raise RuntimeError(f"c did not cancel the run: {result!r}")
            await asyncio.sleep(AFTER)  # its autosave is written before the next round
            out.append({"lateness": lateness, "after": after, "duration": duration, "cancel": cancel,
                        "cancelled_at": result.completed, "progress": messages})
            worst = max(lateness) * 1e3
            late = [f"{(t - start) * 1e3:.0f}:{x * 1e3:.0f}" for t, x in zip(at, lateness) if x * 1e3 > STALL / 2]
            log(f"training: round {r + 1}/{rounds}: run {duration:.1f} s, {len(lateness)} ticks, longest "
                f"{worst:.0f} ms, {sum(1 for x in lateness if x * 1e3 > STALL)} over {STALL:.0f} ms, "
                f"{messages} progress messages; cancel {cancel * 1e3:.0f} ms at step {result.completed}; "
                f"ticks over {STALL / 2:.0f} ms late (ms into the run:lateness) {' '.join(late) or 'none'}; "
                f"in the {AFTER:.0f} s after it, longest {max(after) * 1e3:.0f} ms")
        probe.timer.stop()
    return out


def run(quick: bool = False) -> list[Figure]:
    if not available():
        log("training: the training screen does not exist yet; skipped")
        return []
    os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
    # an autosave left by another benchmark would open the restore question first
    old = os.environ.get("BACKPROP_TUI_DATA_DIR")
    os.environ["BACKPROP_TUI_DATA_DIR"] = tempfile.mkdtemp(prefix="backprop-bench-training-")
    rounds = 2 if quick else 5
    log(f"training: {rounds} rounds of {STEPS} SGD steps on {PRESET} (and a cancelled run)")
    try:
        results = asyncio.run(measure(rounds))
    finally:
        if old is None:
            os.environ.pop("BACKPROP_TUI_DATA_DIR", None)
        else:
            os.environ["BACKPROP_TUI_DATA_DIR"] = old
    ms = [x * 1e3 for r in results for x in r["lateness"]]
    worst_per_run = [max(r["lateness"]) * 1e3 for r in results]
    over_per_run = [sum(1 for x in r["lateness"] if x * 1e3 > STALL) for r in results]
    p99_per_run = [quantile([x * 1e3 for x in r["lateness"]], 0.99) for r in results]
    cancels = [r["cancel"] * 1e3 for r in results]
    after = [max(r["after"]) * 1e3 for r in results]
    durations = [r["duration"] for r in results]
    over = sum(over_per_run)
    runs = len(results)
    return [
        Figure(GROUP, "stalls over 50 ms while training (all runs)", over, min(over_per_run), max(over_per_run),
               "stalls", runs, None, "",
               f"{len(ms)} ticks of a {PROBE * 1e3:.0f} ms timer in {runs} runs; per run: "
               + ", ".join(str(n) for n in over_per_run)),
        Figure(GROUP, "longest tick lateness (stall) while training, worst run", max(worst_per_run),
               min(worst_per_run), max(worst_per_run), "ms", runs, STALL, "≤ 50 ms (no stall over 50 ms)",
               "per run: " + ", ".join(f"{w:.0f}" for w in worst_per_run) + " ms"),
        Figure(GROUP, "tick lateness while training, p99", quantile(ms, 0.99), min(p99_per_run), max(p99_per_run),
               "ms", len(ms), None, "",
               f"median {statistics.median(ms):.2f} ms; spread = p99 of the best and worst run"),
        Figure(GROUP, f"longest stall in the {AFTER:.0f} s after a run, worst run", max(after), min(after), max(after),
               "ms", runs, None, "", "not while it runs: what any edit of mlp_784 sets off in the explorer "
               "(inspector analyses, autosave); per run: " + ", ".join(f"{w:.0f}" for w in after) + " ms"),
        figure(GROUP, "1,000-step run, enter → result shown", [d * 1e3 for d in durations], "ms",
               note=f"progress messages per run: {', '.join(str(r['progress']) for r in results)}"),
        figure(GROUP, "cancel: key c → run stopped and shown", cancels, "ms", 1000.0, "≤ 1 s",
               note="stopped at step " + ", ".join(str(r["cancelled_at"]) for r in results)
               + f" of {STEPS} ({CANCEL_AFTER} s in), the steps done kept"),
    ]


if __name__ == "__main__":
    for f in run(quick="--quick" in sys.argv[1:]):
        print(f"{f.name}: {f.median:.4g} {f.unit} (spread {f.low:.4g}–{f.high:.4g}, n={f.samples}) "
              f"{f.target_text} {f.verdict}  {f.note}")
