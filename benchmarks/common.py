"""Shared pieces of the benchmarks: statistics, figures with targets, the machine.

Every figure is either a median over many repetitions or a ratio against a baseline
measured in the same run (interleaved with it, round by round, so that load from other
processes hits both alike). Timings are never asserted in tests; `run_all.py` compares
them with the targets of issue 6 and writes docs/benchmarks.md.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
SEED_PRESETS = ("scalar_chain", "linear_regression", "simple_nn", "softmax_classifier", "dead_relu",
                "gradient_accumulation")
NETWORK_PRESETS = ("makemore_backprop", "attention_head", "batchnorm", "tiny_cnn", "residual_layernorm")
SCALE_PRESETS = ("mlp_784", "deep_chain", "mlp_1m")
PRESETS = SEED_PRESETS + NETWORK_PRESETS + SCALE_PRESETS


def edited_leaf(preset) -> tuple[int, object]:
    """The leaf the benchmarks nudge, and its place in the leaf list: the first float leaf
    that requires grad (the first float leaf if none does)."""
    floats = [(i, leaf) for i, leaf in enumerate(preset.leaves) if leaf.dtype == "float"]
    return next(((i, leaf) for i, leaf in floats if leaf.requires_grad), floats[0])


@dataclass(frozen=True)
class Figure:
    """One measured number, how it spreads, and the target it is checked against."""

    group: str
    name: str
    median: float
    low: float  # spread: 25th percentile (or min when few samples)
    high: float  # 75th percentile
    unit: str  # "ms", "x" (ratio), "MB"
    samples: int
    target: float | None = None  # the figure must be <= target
    target_text: str = ""
    note: str = ""

    @property
    def passed(self) -> bool | None:
        return None if self.target is None else self.median <= self.target

    @property
    def verdict(self) -> str:
        return {None: "info", True: "PASS", False: "FAIL"}[self.passed]


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def figure(group: str, name: str, values: list[float], unit: str, target: float | None = None,
           target_text: str = "", note: str = "", stat: str = "median") -> Figure:
    """A Figure from samples; stat "p95" reports the 95th percentile as the checked number."""
    central = statistics.median(values) if stat == "median" else quantile(values, 0.95)
    return Figure(group, name, central, quantile(values, 0.25), quantile(values, 0.75), unit, len(values),
                  target, target_text, note)


def time_calls(fn: Callable[[int], object], n: int) -> list[float]:
    """Seconds per call of fn(i) for i in 0..n-1, each timed on its own."""
    out = []
    clock = time.perf_counter
    for i in range(n):
        start = clock()
        fn(i)
        out.append(clock() - start)
    return out


def interleaved_ratio(subject: Callable[[int], object], baseline: Callable[[int], object],
                      rounds: int, per_round: int) -> tuple[list[float], list[float], list[float]]:
    """Median seconds of subject and baseline in alternating blocks, and their ratio per round."""
    subject_medians, baseline_medians, ratios = [], [], []
    for r in range(rounds):
        first, second = (subject, baseline) if r % 2 == 0 else (baseline, subject)
        a = statistics.median(time_calls(first, per_round))
        b = statistics.median(time_calls(second, per_round))
        s, base = (a, b) if r % 2 == 0 else (b, a)
        subject_medians.append(s)
        baseline_medians.append(base)
        ratios.append(s / base)
    return subject_medians, baseline_medians, ratios


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "OS": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
    }
    for module in ("torch", "textual", "numpy"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = "not installed"
    try:
        info["load average"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        pass
    return info


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
