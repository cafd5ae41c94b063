"""Per-edit latency: from the key press of an edit to the settled screen.

Two measurements of the same thing, on every bundled preset:

- In a real terminal (checked against the targets, 120 edits): `backprop-tui PRESET` runs in a
  100x30 pseudo-terminal; the weight grid gets the focus (tab, enter) and `+` and `-`
  nudge its first element in turn. Each key is timed until the new output value is
  drawn, and then until the screen goes quiet (the last byte before 100 ms of silence:
  the settled screen). An unbound key (f9) alternates with the edits and is timed the
  same way (0 when it draws nothing); the figure checked is an edit's time minus the
  unbound key's median. Nothing runs in the app's process but the app. Each preset's
  edits are taken in ROUNDS rounds, the presets in turn within each round, so that a
  slow phase of the machine (they last minutes, and add up to half to every time) weighs
  on every preset alike instead of deciding the one measured while it lasts.
- Through Textual's Pilot at 100x30 (for information, 50 edits): an edit (`+`/`-`) and a key bound to nothing
  (`f9`) alternate; each is timed until the key is handled, the workers it started have
  finished, and the screen has refreshed; an edit's latency is its time minus the
  unbound key's median (what Pilot and the event loop cost by themselves, about 90 ms
  per key here, which is why the terminal measurement is the one checked).

The floor (benchmarks/floor_app.py: one Static whose key changes a number) is timed the
same way in the same rounds. Targets: the seed presets' edit median within 4x the floor's
and mlp_784's within 8x (each round's ratio, the median of the rounds); median <= 50 ms on
the network presets, mlp_784 and deep_chain, <= 100 ms on mlp_1m.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time

from benchmarks.common import NETWORK_PRESETS, PRESETS, SEED_PRESETS, Figure, edited_leaf, figure, log

NULL_KEY = "f9"
FLOOR = "floor app"  # benchmarks/floor_app.py, timed as a preset is
SEED_RATIO, SCALE_RATIO = 4.0, 8.0  # an edit's median / the floor's: seed presets, mlp_784
# an edit's median in milliseconds: the scale presets, and each network preset within 50 ms
MEDIAN_TARGETS = {**{name: (50.0, "≤ 50 ms") for name in (*NETWORK_PRESETS, "mlp_784", "deep_chain")},
                  "mlp_1m": (100.0, "≤ 100 ms")}
ROUNDS = 4  # a fresh explorer per preset per round; the edits are split among the rounds
SIZE = (100, 30)


def available() -> bool:
    try:
        from backprop_tui.ui import BackpropApp  # noqa: F401
        from backprop_tui.ui.widgets.weight_editor import WeightEditor  # noqa: F401
    except ImportError:
        return False
    return True


async def _settle(app, pilot) -> None:
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def measure(preset: str, edits: int) -> tuple[list[float], list[float]]:
    """Seconds per edit and per unbound key, `edits` of each, alternating."""
    from backprop_tui.ui import BackpropApp
    from backprop_tui.ui.widgets.weight_editor import WeightEditor

    import tempfile

    # a data directory of its own: no autosave of an earlier run offers itself at start-up
    os.environ["BACKPROP_TUI_DATA_DIR"] = tempfile.mkdtemp(prefix="backprop-bench-latency-")
    app = BackpropApp(preset, cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        deadline = time.perf_counter() + 120
        while app.session is None:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{preset}: no session after 120 s")
            await pilot.pause(0.05)
        await _settle(app, pilot)
        _, leaf = edited_leaf(app.session.preset)
        app.query_one(WeightEditor).select_leaf(leaf.name, focus_grid=True)
        await _settle(app, pilot)
        edit_times, null_times = [], []
        before = len(app.session.undo_stack)
        for i in range(edits):
            key = "plus" if i % 2 == 0 else "minus"
            start = time.perf_counter()
            await pilot.press(key)
            await _settle(app, pilot)
            edit_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            await pilot.press(NULL_KEY)
            await _settle(app, pilot)
            null_times.append(time.perf_counter() - start)
        done = app.session.steps_taken, len(app.session.undo_stack) - before
        if done[1] < min(edits, 50):  # the history may drop old entries; but edits must have happened
            raise RuntimeError(f"{preset}: only {done[1]} of {edits} edits reached the session")
    return edit_times, null_times


UNBOUND_KEY_BYTES = b"\x1b[20~"  # f9 in an xterm: no binding in the explorer


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_in_terminal(preset: str, edits: int) -> tuple[list[float], list[float], list[float], float]:
    """Seconds from typing +/- to the new output value on screen, and to the settled screen,
    with `backprop-tui PRESET` in a real pseudo-terminal (no harness in the app's process);
    and, alternating with the edits, from an unbound key (f9) to its settled screen (0
    when it draws nothing: there is nothing to wait for); and the explorer's CPU seconds
    per edit (what the load of other processes does not change). PRESET FLOOR times the
    floor app (benchmarks/floor_app.py) the same way."""
    import sys
    import tempfile
    from pathlib import Path

    from benchmarks.terminal import Session as Terminal

    # a data directory of its own: no autosave of an earlier run offers itself at start-up
    env = dict(os.environ, BACKPROP_TUI_DATA_DIR=tempfile.mkdtemp(prefix="backprop-bench-latency-"))
    if preset == FLOOR:
        start, nudged = "value 0", "value 1"
        terminal = Terminal([sys.executable, str(Path(__file__).with_name("floor_app.py"))], env=env)
        quit_keys: tuple[bytes, ...] = (b"\x11",)
    else:
        from backprop_tui.engine import Session, load_preset, resolve_preset
        from backprop_tui.engine.numbers import fmt
        from backprop_tui.ui.widgets.weight_editor import nudge_step

        replay = Session(load_preset(resolve_preset(preset)))
        place, leaf = edited_leaf(replay.preset)  # its grid cursor starts at [0, ...]
        loaded = fmt(replay.snapshot.loss)
        # each edit is drawn when the header's status reads it: `linear1.weight[0,0] = 0.0204023`
        # (the loss may not move at the digits shown)
        step = nudge_step(replay.snapshot)
        replay.nudge(leaf.name, (0,) * len(leaf.shape), step)
        nudged = replay.undo_stack[-1].label
        replay.nudge(leaf.name, (0,) * len(leaf.shape), -step)
        start = replay.undo_stack[-1].label
        terminal = Terminal([str(Path(sys.executable).parent / "backprop-tui"), preset], env=env)
        quit_keys = (b"\x11", b"d")  # quit; d: discard the edits
    try:
        terminal.wait_for(start if preset == FLOOR else loaded)
        terminal.settle(1.0)
        if preset != FLOOR:
            terminal.key(b"\t", "To grid", quiet=0.5)  # graph -> leaf list (the footer says so)
            terminal.key(b"\x1b[H" + b"\x1b[B" * place, None, quiet=0.5)  # home, down to the edited leaf
            terminal.key(b"\r", "Edit", quiet=0.5)  # leaf list -> its grid
        shown, settled, unbound = [], [], []
        cpu_before = process_cpu_seconds(terminal.proc.pid)
        for i in range(edits):
            keys, marker = (b"+", nudged) if i % 2 == 0 else (b"-", start)
            at, last, _ = terminal.key(keys, marker if nudged != start else None, quiet=0.1)
            shown.append(at if at is not None else last)
            settled.append(last)
            _, last, _ = terminal.key(UNBOUND_KEY_BYTES, None, quiet=0.1)
            unbound.append(last or 0.0)
        cpu = (process_cpu_seconds(terminal.proc.pid) - cpu_before) / edits
        if edits % 2:
            terminal.key(b"-", None, quiet=0.1)
    finally:
        terminal.close(quit_keys=quit_keys)
    if any(t is None for t in settled):
        raise RuntimeError(f"{preset}: an edit drew nothing")
    return shown, settled, unbound, cpu


def run(quick: bool = False, presets: tuple[str, ...] = PRESETS) -> list[Figure]:
    """Both measurements: in a real terminal (checked against the targets) and through Pilot."""
    if not available():
        log("latency: backprop_tui.ui.BackpropApp does not exist yet; skipped")
        return []
    return run_terminal(quick, presets) + run_pilot(quick, presets)


def run_terminal(quick: bool = False, presets: tuple[str, ...] = PRESETS) -> list[Figure]:
    edits, rounds = (40, 2) if quick else (120, ROUNDS)
    samples: dict[str, tuple[list[float], list[float], list[float], list[float]]] = {}
    round_medians: dict[str, list[float]] = {}  # per round: median latency, ms
    failed: set[str] = set()
    for round_ in range(rounds):
        for preset in (FLOOR, *presets):
            if preset in failed:
                continue
            log(f"latency (terminal): {preset}, round {round_ + 1}/{rounds}, {edits // rounds} edits")
            try:
                measured = measure_in_terminal(preset, edits // rounds)
            except (TimeoutError, RuntimeError) as exc:
                log(f"latency (terminal): {preset} failed: {exc}")
                failed.add(preset)
                continue
            shown, settled, unbound, cpus = samples.setdefault(preset, ([], [], [], []))
            shown += measured[0]
            settled += measured[1]
            unbound += measured[2]
            cpus.append(measured[3])
            null = statistics.median(measured[2])
            round_medians.setdefault(preset, []).append(statistics.median(t - null for t in measured[1]) * 1e3)
    figures = []
    for preset in (FLOOR, *presets):
        if preset in failed or preset not in samples:
            continue
        shown, settled, unbound, cpus = samples[preset]
        cpu = statistics.mean(cpus)  # per edit; every round has as many edits
        null = statistics.median(unbound)
        latency = [(t - null) * 1e3 for t in settled]
        median_target, median_text = MEDIAN_TARGETS.get(preset, (None, ""))
        note = (f"new value drawn after {statistics.median(shown) * 1e3:.0f} ms, settled after "
                f"{statistics.median(settled) * 1e3:.0f} ms; unbound key {null * 1e3:.1f} ms (medians); "
                f"CPU per key {cpu * 1e3:.0f} ms; {rounds} rounds of {edits // rounds} edits")
        figures.append(figure("Per-edit latency", f"{preset}: key → settled screen − unbound key, median", latency,
                              "ms", median_target, median_text, note))
        figures.append(figure("Per-edit latency", f"{preset}: key → settled screen − unbound key, p95", latency,
                              "ms", stat="p95"))
        ratio_target = SCALE_RATIO if preset == "mlp_784" else SEED_RATIO if preset in SEED_PRESETS else None
        if preset != FLOOR and FLOOR in round_medians and len(round_medians[FLOOR]) == len(round_medians[preset]):
            # per round, against the floor measured in the same round: a slow phase of the
            # machine weighs on both
            ratios = [mine / max(floor, 1e-3) for mine, floor in zip(round_medians[preset], round_medians[FLOOR])]
            figures.append(figure("Per-edit latency", f"{preset}: edit median / the floor app's", ratios, "x",
                                  ratio_target, f"≤ {ratio_target:g}×" if ratio_target else "",
                                  "the median of each round's ratio"))
    return figures


def run_pilot(quick: bool = False, presets: tuple[str, ...] = PRESETS) -> list[Figure]:
    os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
    edits = 20 if quick else 50  # for information only: the terminal run is the one checked
    figures = []
    for preset in presets:
        log(f"latency (pilot): {preset}, {edits} edits")
        try:
            edit_times, null_times = asyncio.run(measure(preset, edits))
        except (TimeoutError, RuntimeError, AssertionError) as exc:
            log(f"latency (pilot): {preset} failed: {exc}")
            continue
        null = statistics.median(null_times)
        latency = [(t - null) * 1e3 for t in edit_times]
        note = f"unbound key {null * 1e3:.1f} ms; raw edit median {statistics.median(edit_times) * 1e3:.1f} ms"
        figures.append(figure("Per-edit latency (Pilot)", f"{preset}: edit − unbound key, median", latency, "ms",
                              note=note))
        figures.append(figure("Per-edit latency (Pilot)", f"{preset}: edit − unbound key, p95", latency, "ms",
                              stat="p95"))
    return figures


if __name__ == "__main__":
    import sys

    for f in run(quick=True, presets=tuple(sys.argv[1:]) or PRESETS):
        print(f"{f.name}: {f.median:.3f} {f.unit} [{f.low:.3f}, {f.high:.3f}] {f.verdict} {f.note}")
