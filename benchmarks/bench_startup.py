"""Start-up and memory: `backprop-tui PRESET` in a 100x30 pseudo-terminal.

Each round spawns `python -c "import torch"` (the baseline) and then the explorer on
the preset, alternately, so both meet the same machine load. For the explorer it times
  - the first frame: the header's "backprop-tui" is on screen;
  - the values: the header's "{output} = {value}" (say "J = 0.5") is on screen;
then types ctrl+q. The values marker must be absent from all the text up to the first
frame (else its time would only repeat the first frame's); a run where it is not
stops the benchmark. The bare value would not do: gradient_accumulation's "8" is a
digit that other text holds (it was "found" in the parameters of an escape sequence
cut off at the end of a read, long before the value was drawn).
Peak RSS of both comes from wait4's rusage.
Targets (issue 6): first frame <= 0.3x and values <= 1.5x the baseline's time,
peak RSS <= 1.5x the baseline's.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from benchmarks.common import PRESETS, SCALE_PRESETS, Figure, figure, log
from benchmarks.terminal import run_in_pty

BIN = Path(sys.executable).parent
FIRST_FRAME = "backprop-tui"
BASELINE = "import torch\nprint('VmHWM', open('/proc/self/status').read().split('VmHWM:')[1].split()[0])"


def output_marker(preset: str) -> str:
    """`{output} = {value}` as the header writes it (computed here, in the harness's process).

    The header draws the name, " = " and the value as three styled spans (and may pad
    them on the left): once the escape sequences between them are dropped they read as
    this text.
    """
    from backprop_tui.engine import Session, load_preset, resolve_preset
    from backprop_tui.engine.numbers import fmt

    snapshot = Session(load_preset(resolve_preset(preset))).snapshot
    return f"{snapshot.output} = {fmt(snapshot.loss)}"


def check_markers(preset: str, marker: str, app) -> None:
    """The values marker is a measurement only if the first frame does not already show it."""
    if marker in app.screens[FIRST_FRAME]:
        raise RuntimeError(f"{preset}: the values marker {marker!r} is already on the first frame; "
                           f"it would time the first frame again: {app.screens[FIRST_FRAME][-300:]!r}")


def explorer_available() -> bool:
    try:
        from backprop_tui.ui.app import run_app  # noqa: F401
    except ImportError:
        return False
    return True


def run(quick: bool = False, presets: tuple[str, ...] = PRESETS) -> list[Figure]:
    if not explorer_available():
        log("startup: backprop_tui.ui.app.run_app does not exist yet; skipped")
        return []
    rounds = 2 if quick else 5
    # `import torch`, then the process's own peak RSS (a read of /proc: well under a millisecond)
    baseline_argv = [sys.executable, "-c", BASELINE]
    figures: list[Figure] = []
    for preset in presets:
        marker = output_marker(preset)
        first, values, base_t, rss, base_rss = [], [], [], [], []
        for r in range(rounds):
            log(f"startup: {preset} round {r + 1}/{rounds}")
            base = run_in_pty(baseline_argv, [])
            app = run_in_pty([str(BIN / "backprop-tui"), preset], [FIRST_FRAME, marker])
            if app.returncode != 0 or len(app.seen) < 2:
                raise RuntimeError(f"{preset}: explorer exited {app.returncode}, saw {app.seen}; screen: {app.tail!r}")
            check_markers(preset, marker, app)
            base_t.append(base.exit_time)
            base_rss.append(int(base.tail.split("VmHWM")[1].split()[0]) / 1024)
            first.append(app.seen[FIRST_FRAME] / base.exit_time)
            values.append(app.seen[marker] / base.exit_time)
            rss.append(app.max_rss_mb / base.max_rss_mb)
        note = (f"import torch {statistics.median(base_t):.2f} s, {statistics.median(base_rss):.0f} MB; "
                f"explorer values at {statistics.median(values) * statistics.median(base_t):.2f} s")
        scale = " (scale preset)" if preset in SCALE_PRESETS else ""
        figures.append(figure("Start-up", f"first frame, {preset}{scale} / import torch", first, "x", 0.3, "≤ 0.3×"))
        figures.append(
            figure("Start-up", f"values shown, {preset}{scale} / import torch", values, "x", 1.5, "≤ 1.5×", note)
        )
        figures.append(figure("Memory", f"peak RSS, {preset}{scale} / import torch", rss, "x", 1.5, "≤ 1.5×",
                              f"explorer {statistics.median(rss) * statistics.median(base_rss):.0f} MB"))
    return figures


if __name__ == "__main__":
    for f in run(quick=True, presets=tuple(sys.argv[1:]) or PRESETS):
        print(f"{f.name}: {f.median:.3f} {f.unit} [{f.low:.3f}, {f.high:.3f}] {f.verdict} {f.note}")
