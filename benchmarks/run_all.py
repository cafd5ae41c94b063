"""Run every benchmark and write docs/benchmarks.md (`make bench`).

    python benchmarks/run_all.py            # everything, as published (about 25 minutes)
    python benchmarks/run_all.py --quick    # fewer repetitions, for a look while working
    python benchmarks/run_all.py --only engine,startup,latency,training

The measured table is written between the markers of docs/benchmarks.md; the rest of
that file (how each figure is measured, the targets, what is known to be slow) is kept.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from benchmarks import bench_engine, bench_latency, bench_startup, bench_training  # noqa: E402
from benchmarks.common import ROOT, Figure, log, machine  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- measured: begin (written by benchmarks/run_all.py) -->", "<!-- measured: end -->"
SUITES = {
    "engine": bench_engine.run,
    "startup": bench_startup.run,
    "latency": bench_latency.run,
    "training": bench_training.run,
}


def number(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}×"
    if unit == "ms":
        return f"{value:.3g} ms" if value < 100 else f"{value:.0f} ms"
    return f"{value:.3g} {unit}"


def table(figures: list[Figure]) -> str:
    lines = [
        "| figure | median | spread (25–75 %) | n | target | result | note |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    group = None
    for f in figures:
        if f.group != group:
            group = f.group
            lines.append(f"| **{group}** | | | | | | |")
        central = number(f.median, f.unit) + (" (p95)" if "p95" in f.name else "")
        spread = f"{number(f.low, f.unit)} – {number(f.high, f.unit)}"
        lines.append(f"| {f.name} | {central} | {spread} | {f.samples} | {f.target_text} | {f.verdict} | {f.note} |")
    return "\n".join(lines)


def measured_section(figures: list[Figure], seconds: float, quick: bool, errors: list[str] = ()) -> str:
    info = machine()
    passed = sum(1 for f in figures if f.passed)
    failed = [f for f in figures if f.passed is False]
    rows = "\n".join(f"| {k} | {v} |" for k, v in info.items())
    summary = f"{passed} of {passed + len(failed)} checked figures pass"
    if failed:
        summary += "; failing: " + "; ".join(
            f"{f.name} ({number(f.median, f.unit)}, target {f.target_text})" for f in failed
        )
    return "\n".join([
        BEGIN,
        f"Measured on {time.strftime('%Y-%m-%d %H:%M')} in {seconds / 60:.1f} minutes"
        + (" (`--quick`: fewer repetitions)" if quick else "") + f". {summary}.",
        "",
        "| machine | |",
        "| --- | --- |",
        rows,
        "",
        table(figures),
        *([""] + [f"Not measured: {e}" for e in errors] if errors else []),
        END,
    ])


def write_doc(section: str) -> None:
    if DOC.exists() and BEGIN in DOC.read_text():
        text = DOC.read_text()
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1] if END in rest else ""
        DOC.write_text(head + section + tail)
    else:
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text("# Benchmarks\n\n" + section + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=",".join(SUITES), help="comma-separated: " + ", ".join(SUITES))
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s): {', '.join(unknown)}")
    # Autosaves of the runs go to a directory of their own: a saved edit would make the
    # next start offer to restore it, and the keys typed would go to that question.
    os.environ["BACKPROP_TUI_DATA_DIR"] = tempfile.mkdtemp(prefix="backprop-bench-")
    start = time.perf_counter()
    figures: list[Figure] = []
    errors: list[str] = []
    for name in chosen:
        log(f"== {name}")
        try:
            figures.extend(SUITES[name](quick=args.quick))
        except Exception as exc:  # noqa: BLE001 - one suite failing must not lose the others' numbers
            log(f"{name} failed: {type(exc).__name__}: {exc}")
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
    section = measured_section(figures, time.perf_counter() - start, args.quick, errors)
    write_doc(section)
    print(table(figures))
    log(f"wrote {DOC.relative_to(ROOT)}")
    return 1 if errors or any(f.passed is False for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
