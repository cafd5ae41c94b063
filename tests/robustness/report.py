"""Run the robustness suites and print every case: what was tried, what held.

    .venv/bin/python tests/robustness/report.py                # all suites
    .venv/bin/python tests/robustness/report.py --engine-only  # without tests/ui/test_robust_*.py

Counts come from the run itself: a fuzz test records how many generated inputs it tried
and how many held (tests/robustness/conftest.py, `tally`); any other case is one input,
held if its test passed. A known bug is a strict-xfail test: tried, not held.
docs/robustness.md is the reference for users; this prints the evidence behind it.
"""

from __future__ import annotations

import ast
import json
import xml.etree.ElementTree as ET
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
REPORT_ENV = "BACKPROP_TUI_ROBUSTNESS_JSON"

SUITES = {
    "test_bad_presets.py": "Bad preset files",
    "test_fuzz.py": "Fuzzing",
    "test_value_editor.py": "Bad input to the value editor",
    "test_bad_computations.py": "Computations that go bad",
    "test_fixed_bugs.py": "Engine bugs found outside the corpus",
    "test_autosave.py": "Autosave",
}
# The explorer's suites, run with pytest-xdist and read from JUnit XML.
UI_DIR = ROOT / "tests" / "ui"
UI_SUITES = {
    "test_robust_input.py": "Explorer: bad input, bad computations, a tiny terminal",
    "test_robust_monkey.py": "Explorer: monkey test",
    "test_robust_persistence.py": "Explorer: nothing lost (quit, save, autosave, restore)",
    "test_robust_snapshots.py": "Explorer: the dialogs' snapshots",
}
HOLDS = {
    "passed": "held",
    "xfailed": "**engine bug** (strict xfail)",
    "failed": "**FAILED**",
    "xpassed": "xpassed: fixed? remove the xfail",
    "skipped": "skipped",
}


def run_suites() -> tuple[list[dict], int]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "outcomes.json"
        env = {**os.environ, REPORT_ENV: str(out), "TEXTUAL_ANIMATIONS": "none"}
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", str(HERE)]
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if not out.exists():
            sys.exit(f"the suites did not run:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return json.loads(out.read_text()), result.returncode


def run_ui_suites() -> tuple[list[dict], int]:
    """The explorer's robustness tests, two workers; outcomes and recorded counts from JUnit XML."""
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "ui.xml"
        env = {**os.environ, "TEXTUAL_ANIMATIONS": "none"}
        files = [str(UI_DIR / name) for name in UI_SUITES]
        command = [sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:randomly", f"--junitxml={xml}", *files]
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if not xml.exists():
            sys.exit(f"the explorer suites did not run:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        outcomes = []
        for case in ET.parse(xml).getroot().iter("testcase"):
            outcome, reason = "passed", ""
            for child in case:
                if child.tag in ("failure", "error"):
                    outcome, reason = "failed", (child.get("message") or "")[:300]
                elif child.tag == "skipped":
                    xfail = child.get("type") == "pytest.xfail"
                    outcome, reason = ("xfailed" if xfail else "skipped"), child.get("message", "")
            props = {p.get("name"): p.get("value") for p in case.iter("property")}
            module = case.get("classname", "").rsplit(".", 1)[-1] + ".py"
            outcomes.append({"nodeid": f"{module}::{case.get('name')}", "outcome": outcome,
                             "reason": reason.removeprefix("reason: "), "props": props})
        return outcomes, result.returncode


def render_ui(outcomes: list[dict], returncode: int) -> str:
    by_suite: dict[str, list[dict]] = defaultdict(list)
    for outcome in outcomes:
        suite, function, param = split_nodeid(outcome["nodeid"])
        by_suite[suite].append({**outcome, "function": function, "param": param})
    lines = [
        "# The explorer's suites",
        "",
        "`tests/ui/test_robust_*.py`, driven through Textual's Pilot, run by the same command",
        "with two workers. *Tried* counts the hostile texts",
        "of the value-editor table and the keys of the monkey test; any other case is one input.",
        "Every test runs with its own data directory (BACKPROP_TUI_DATA_DIR, set for the whole suite",
        "in tests/conftest.py) and, where it saves, its own working directory.",
        "",
        "| suite | cases | tried | held | engine bugs | failed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    total = [0, 0, 0, 0, 0]
    for suite, title in UI_SUITES.items():
        rows = by_suite.get(suite, [])
        tried = sum(counts(r)[0] for r in rows)
        held = sum(counts(r)[1] for r in rows)
        bugs = sum(r["outcome"] == "xfailed" for r in rows)
        failed = sum(r["outcome"] in ("failed", "xpassed") for r in rows)
        lines.append(f"| {title} | {len(rows)} | {tried:,} | {held:,} | {bugs} | {failed} |")
        for i, n in enumerate((len(rows), tried, held, bugs, failed)):
            total[i] += n
    lines.append(f"| **all** | {total[0]} | {total[1]:,} | {total[2]:,} | {total[3]} | {total[4]} |")
    lines += ["", f"pytest exit status of the explorer run: {returncode}."]
    for suite, title in UI_SUITES.items():
        module_doc, function_docs = docstrings(UI_DIR / suite)
        lines += ["", f"## {title} (`tests/ui/{suite}`)", "", module_doc, ""]
        lines += ["| test | case | tried | held | outcome | note |", "|---|---|---:|---:|---|---|"]
        for row in by_suite.get(suite, []):
            tried, held = counts(row)
            props = row["props"]
            note = row.get("reason") or function_docs.get(row["function"], "")
            if props.get("screens"):
                note = (
                    f"{note} screens seen: {props['screens'].replace(',', ', ')}; "
                    f"{props.get('edits', '?')} edits in the undo history at the end"
                )
            lines.append(
                f"| `{row['function']}` | {cell(row['param']) or ''} | {tried:,} | {held:,} "
                f"| {HOLDS.get(row['outcome'], row['outcome'])} | {cell(note)} |"
            )
    return "\n".join(lines) + "\n"


def docstrings(path: Path) -> tuple[str, dict[str, str]]:
    """The module's docstring and each test function's first docstring line, read without importing."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = {
        node.name: (ast.get_docstring(node) or "").split("\n")[0]
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")
    }
    return ast.get_docstring(tree) or "", functions


def split_nodeid(nodeid: str) -> tuple[str, str, str]:
    path, _, name = nodeid.partition("::")
    function, _, param = name.partition("[")
    return Path(path).name, function, param[:-1] if param else ""


def counts(outcome: dict) -> tuple[int, int]:
    props = outcome["props"]
    if "tried" in props and outcome["outcome"] == "passed" and "held" not in props:
        return int(props["tried"]), int(props["tried"])
    if "tried" in props and "held" not in props:
        return int(props["tried"]), 0
    if "tried" in props:
        return int(props["tried"]), int(props["held"]) if outcome["outcome"] == "passed" else min(
            int(props["held"]), int(props["tried"]) - 1
        )
    return 1, 1 if outcome["outcome"] == "passed" else 0


def cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(outcomes: list[dict], returncode: int) -> str:
    by_suite: dict[str, list[dict]] = defaultdict(list)
    for outcome in outcomes:
        suite, function, param = split_nodeid(outcome["nodeid"])
        by_suite[suite].append({**outcome, "function": function, "param": param})

    lines = [
        "# Robustness: every case",
        "",
        "Every case of `tests/robustness/`, from a run of `tests/robustness/report.py`.",
        "",
        "*Tried* counts inputs: a fuzz test counts every generated input it ran, any other case is",
        "one input. *Held* counts the inputs for which the property held. An **engine bug** is a",
        "strict-xfail test that says what should happen: it fails today, and turns red when the",
        "engine is fixed, so that its mark is removed.",
        "",
        "## Summary",
        "",
        "| suite | cases | tried | held | engine bugs | failed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    total = [0, 0, 0, 0, 0]
    for suite, title in SUITES.items():
        rows = by_suite.get(suite, [])
        tried = sum(counts(r)[0] for r in rows)
        held = sum(counts(r)[1] for r in rows)
        bugs = sum(r["outcome"] == "xfailed" for r in rows)
        failed = sum(r["outcome"] in ("failed", "xpassed") for r in rows)
        lines.append(f"| {title} | {len(rows)} | {tried:,} | {held:,} | {bugs} | {failed} |")
        for i, n in enumerate((len(rows), tried, held, bugs, failed)):
            total[i] += n
    lines.append(f"| **all** | {total[0]} | {total[1]:,} | {total[2]:,} | {total[3]} | {total[4]} |")
    lines += ["", f"pytest exit status of the run: {returncode} (0: everything passed or failed as expected)."]
    open_bugs = [r for r in outcomes if r["outcome"] == "xfailed"]
    failed = [r for r in outcomes if r["outcome"] in ("failed", "xpassed")]
    lines += ["", "Still open, pinned as strict xfails (the **engine bug** rows below):", ""]
    lines += [f"- `{r['nodeid'].split('::', 1)[1]}`: {cell(r['reason'])}" for r in open_bugs] or ["- none"]
    if failed:
        lines += ["", "**Failed in this run** (an engine bug not pinned yet, a fixed one come back,"]
        lines += ["or an xfail that now passes):", ""]
        lines += [f"- `{r['nodeid'].split('::', 1)[1]}` ({r['outcome']})" for r in failed]

    for suite, title in SUITES.items():
        module_doc, function_docs = docstrings(HERE / suite)
        lines += ["", f"## {title} (`tests/robustness/{suite}`)", "", module_doc, ""]
        lines += ["| test | case | tried | held | outcome | expected / note |", "|---|---|---:|---:|---|---|"]
        for row in by_suite.get(suite, []):
            tried, held = counts(row)
            props = row["props"]
            note = (
                props.get("bug") or row.get("reason") or props.get("expected") or function_docs.get(row["function"], "")
            )
            if props.get("expected") and row["outcome"] == "xfailed":
                note = f"should say “{props['expected']}”: {note}"
            lines.append(
                f"| `{row['function']}` | {cell(row['param']) or ''} | {tried:,} | {held:,} "
                f"| {HOLDS.get(row['outcome'], row['outcome'])} | {cell(note)} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    outcomes, returncode = run_suites()
    text = render(outcomes, returncode)
    if "--engine-only" not in argv:
        ui_outcomes, ui_returncode = run_ui_suites()
        text += "\n" + render_ui(ui_outcomes, ui_returncode)
        returncode = returncode or ui_returncode
    print(text, end="")
    return returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
