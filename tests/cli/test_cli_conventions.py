"""The command line behaves like the tools people know: --help and --version, errors that
name their argument in one format, `show` fitting the terminal, strict JSON, and a short
summary of a long SGD run that stops where the loss stops being finite."""

from __future__ import annotations

import json
import math
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

import backprop_tui
from backprop_tui.cli import USAGE, main
from backprop_tui.engine import Session, bundled_presets, load_preset

ROOT = Path(__file__).resolve().parents[2]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- help and version


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["show", "--help"], ["check", "--help"],
                                  ["presets", "--help"], ["serve", "--help"],
                                  ["exercise", "--help"]])
def test_help_prints_usage_and_exits_0(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 0 and err == ""
    assert out.startswith("usage: backprop-tui"), out


def test_top_help_lists_every_subcommand_on_one_line(capsys):
    _, out, _ = run(capsys, "--help")
    for command in ("presets", "show", "check", "exercise", "serve"):
        lines = [line for line in out.splitlines() if line.strip().startswith(f"backprop-tui {command}")]
        assert len(lines) == 1, command
    assert max(len(line) for line in out.splitlines()) <= 80


def test_readme_shows_the_help_as_printed(capsys):
    assert USAGE in (ROOT / "README.md").read_text(encoding="utf-8")


def test_version_is_the_package_version(capsys):
    code, out, _ = run(capsys, "--version")
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert code == 0 and out == f"backprop-tui {version}\n" and backprop_tui.__version__ == version


def test_sub_help_lists_the_options(capsys):
    _, out, _ = run(capsys, "show", "--help")
    for option in ("--set", "--steps", "--lr", "--format", "PRESET"):
        assert option in out
    _, out, _ = run(capsys, "serve", "--help")
    for option in ("--host", "--port", "--max-sessions", "--public-url", "--dir"):
        assert option in out


# ---------------------------------------------------------------- check takes names


def test_check_accepts_a_bundled_name(capsys):
    code, out, err = run(capsys, "check", "scalar_chain", "simple_nn")
    assert code == 0 and err == "" and out == "scalar_chain: ok\nsimple_nn: ok\n"


def test_check_unknown_name_is_a_bad_preset(capsys):
    code, out, _ = run(capsys, "check", "no_such_preset")
    assert code == 1 and out.startswith("no_such_preset: cannot read file")


# ---------------------------------------------------------------- errors name their argument


ERRORS = [
    (["show", "linear_regression", "--lr", "0"], 2, "--lr 0: learning rate must be a positive finite number"),
    (["show", "linear_regression", "--lr", "inf"], 2, "--lr inf: learning rate must be"),
    (["show", "linear_regression", "--set", "q=1"], 2, "--set 'q=1': unknown leaf 'q'"),
    (["show", "linear_regression", "--steps", "x"], 2, "--steps: invalid int value: 'x'"),
    (["show", "linear_regression", "--steps", "100001"], 2, "--steps: must be between 0 and 100000"),
    (["show", "linear_regression", "--format", "xml"], 2, "--format: invalid choice: 'xml'"),
    (["show", "no_such_preset"], 1, "PRESET: no preset named 'no_such_preset'"),
    (["show"], 2, "PRESET: required"),
    (["--bogus"], 2, "--bogus: unknown option"),
    (["serve", "--port", "0"], 2, "--port: must be between 1 and 65535"),
    (["serve", "--max-sessions", "0"], 2, "--max-sessions: must be between 1 and 1000"),
    (["serve", "--dir", "/no/such/dir"], 2, "--dir '/no/such/dir': not a directory"),
    (["serve", "--public-url", "example"], 2, "--public-url: must start with http:// or https://"),
    (["serve", "no_such_preset"], 1, "PRESET: no preset named 'no_such_preset'"),
]


@pytest.mark.parametrize(("argv", "code", "message"), ERRORS, ids=[e[2].split(":")[0] for e in ERRORS])
def test_every_error_names_its_argument_in_one_format(capsys, argv, code, message):
    got, out, err = run(capsys, *argv)
    assert got == code and out == ""
    assert err == f"backprop-tui: {err.removeprefix('backprop-tui: ')}" and err.count("\n") == 1, err
    assert err.startswith(f"backprop-tui: {message}"), err


# ---------------------------------------------------------------- show fits the terminal


@pytest.mark.parametrize("name", sorted(bundled_presets()))
@pytest.mark.parametrize("columns", [80, 120])
def test_show_fits_the_terminal(capsys, monkeypatch, name, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    code, out, _ = run(capsys, "show", name)
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= columns


def test_a_matrix_wraps_between_rows_never_inside_a_number(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    _, out, _ = run(capsys, "show", "simple_nn")
    session = Session(load_preset(bundled_presets()["simple_nn"]))
    grad = session.snapshot.node("linear1.weight").grad
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("linear1.weight"))
    grad_lines = [line.strip() for line in lines[start:start + 8] if "[" in line][3:6]
    # one matrix row a line, each row's numbers whole (6 significant digits)
    for line, row in zip(grad_lines, grad):
        numbers = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", line)]
        assert numbers == pytest.approx(row.tolist(), rel=1e-5), line


# ---------------------------------------------------------------- strict JSON


def strict_loads(text: str):
    def refuse(name):
        raise ValueError(f"not RFC 8259 JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_json_of_a_diverged_run_is_strict(capsys):
    code, out, err = run(capsys, "show", "linear_regression", "--lr", "5", "--steps", "40", "--format", "json")
    assert code == 0
    data = strict_loads(out)
    assert data["nonfinite"] is True
    history = data["loss_history"]
    assert history[-1] in ("Infinity", "NaN") and all(isinstance(x, float) for x in history[:-1])
    assert "the loss became" in err and err.startswith("backprop-tui: --steps 40: ")


def test_json_of_a_healthy_run_has_no_marker_set(capsys):
    _, out, _ = run(capsys, "show", "simple_nn", "--format", "json")
    data = strict_loads(out)
    assert data["nonfinite"] is False
    assert data["nodes"][-1]["value"] == pytest.approx(0.0130999, rel=1e-5)


# ---------------------------------------------------------------- --steps summary


def losses_by_hand(lr: float, steps: int) -> list[float]:
    """linear_regression's SGD written separately, in float32 as torch computes it:
    J = (w x + b - y)^2 / 2 from x=-3, y=5, w=3, b=1."""
    f = np.float32
    w, b, x, y, lr32 = f(3), f(1), f(-3), f(5), f(lr)
    losses = []
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps + 1):
            d = w * x + b - y
            losses.append(float(d * d / f(2)))
            w, b = w - lr32 * (d * x), b - lr32 * d
    return losses


def test_steps_prints_a_summary_not_every_number(capsys):
    code, out, _ = run(capsys, "show", "linear_regression", "--steps", "500", "--lr", "0.01")
    assert code == 0
    expected = losses_by_hand(0.01, 500)
    summary = next(line for line in out.splitlines() if line.startswith("loss over 500 SGD step(s)"))
    numbers = dict(re.findall(r"(first|last|min) (\S+?),? ", summary + " "))
    assert float(numbers["first"]) == pytest.approx(expected[0], rel=1e-5)
    assert float(numbers["last"]) == pytest.approx(expected[-1], rel=1e-3)
    assert float(numbers["min"]) == pytest.approx(min(expected), rel=1e-3)
    assert len(out) < 2000  # not 500 numbers


def test_a_run_that_becomes_non_finite_stops_there(capsys):
    lr = 5.0
    expected = losses_by_hand(lr, 200)
    first_bad = next(i for i, x in enumerate(expected) if not math.isfinite(x))
    code, out, err = run(capsys, "show", "linear_regression", "--lr", "5", "--steps", "100000", "--format", "json")
    assert code == 0
    history = strict_loads(out)["loss_history"]
    assert len(history) == first_bad + 1  # stopped at the first non-finite loss, not 100000 steps later
    assert f"at step {first_bad}; stopped there" in err
    code, out, _ = run(capsys, "show", "linear_regression", "--lr", "5", "--steps", "100000")
    assert f"non-finite from step {first_bad}" in " ".join(out.split())


def test_no_autosave_reaches_the_explorer(monkeypatch):
    import backprop_tui.ui.app as app_module

    calls = []
    monkeypatch.setattr(app_module, "run_app",
                        lambda preset, exercise=False, autosave=None: calls.append((preset, autosave)) or 0)
    assert main(["--no-autosave"]) == 0 and main(["simple_nn", "--no-autosave"]) == 0 and main(["simple_nn"]) == 0
    assert main(["--no-autosave", "simple_nn"]) == 0
    assert calls == [("scalar_chain", False), ("simple_nn", False), ("simple_nn", None), ("simple_nn", False)]
