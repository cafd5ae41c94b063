"""The command line without the explorer: presets, show (all formats, --set, --steps), check.

Runs `backprop_tui.cli.main(argv)` in-process and reads stdout/stderr with capsys.
Exit codes: 0 fine, 1 an invalid preset (or torch refusing), 2 a bad command line.
"""

from __future__ import annotations

import json
import os
import tomllib

import pytest

from backprop_tui.cli import main
from backprop_tui.engine import bundled_presets


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    """`show` fits the terminal (shutil.get_terminal_size reads COLUMNS): these tests read the table."""
    monkeypatch.setenv("COLUMNS", "120")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def show_json(capsys, *argv: str) -> dict:
    code, out, err = run(capsys, "show", *argv, "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    return {n["name"]: n for n in data["nodes"]} | {"_": data}


# ---------------------------------------------------------------- presets


def test_presets_lists_every_bundled_preset_with_its_title(capsys):
    code, out, err = run(capsys, "presets")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == len(bundled_presets())
    for line, (name, path) in zip(lines, sorted(bundled_presets().items())):
        title = tomllib.loads(path.read_text())["title"]
        assert line.split()[0] == name
        assert line.endswith(title), line
    for name in ("scalar_chain", "linear_regression", "simple_nn"):
        assert any(line.startswith(name + " ") for line in lines)


def test_presets_takes_no_arguments(capsys):
    code, _, err = run(capsys, "presets", "extra")
    assert code == 2 and err.startswith("backprop-tui: extra: unrecognized argument"), err




# ---------------------------------------------------------------- show


def test_show_text_contains_the_values(capsys):
    code, out, err = run(capsys, "show", "linear_regression")
    assert code == 0 and err == ""
    assert "Linear regression" in out
    rows = {
        line.split("│")[1].strip(): line
        for line in out.splitlines()
        if line.startswith("│") and line.split("│")[1].strip()
    }
    assert "-13" in rows["d"] and "84.5" in rows["J"]
    assert rows["w"].split("│")[-2].strip() == "39"  # the grad column
    assert "no grad" in rows["x"] and "no grad" in rows["y"]
    assert "d**2 / 2" in rows["J"]
    assert "J = 84.5" in out


def test_show_text_of_a_network(capsys):
    code, out, _ = run(capsys, "show", "simple_nn")
    assert code == 0
    for text in ("linear1.weight", "linear3.bias", "-0.0279205", "0.0130999", "-0.95", "1.05", "relu(Z1)"):
        assert text in out, text


def test_show_text_after_steps(capsys):
    code, out, _ = run(capsys, "show", "linear_regression", "--steps", "2")
    assert code == 0
    assert "loss over 2 SGD step(s): first 84.5, last " in out


def test_show_a_preset_file_by_path(capsys, tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(
        'output = "f"\n[tensors.a]\nrole = "parameter"\nvalue = 4.0\n[[steps]]\nname = "f"\nexpr = "a * a"\n'
    )
    nodes = show_json(capsys, str(path))
    assert nodes["f"]["value"] == 16.0 and nodes["a"]["grad"] == 8.0
    assert nodes["_"]["preset"] == "mine"


def test_set_a_scalar(capsys):
    nodes = show_json(capsys, "linear_regression", "--set", "w=2")
    assert nodes["w"]["value"] == 2.0
    assert nodes["J"]["value"] == 50.0 and nodes["w"]["grad"] == 30.0


def test_set_several_and_with_spaces(capsys):
    nodes = show_json(capsys, "linear_regression", "--set", "w = 2", "--set", " b=-1e0 ", "--set", "y=.5")
    # d = 2*(-3) - 1 - 0.5 = -7.5
    assert [nodes[n]["value"] for n in ("w", "b", "y", "d")] == [2.0, -1.0, 0.5, -7.5]


def test_set_a_matrix_element(capsys):
    nodes = show_json(capsys, "simple_nn", "--set", "linear1.weight[0,1]=0.5", "--set", "linear1.bias[ 2 ]=-3")
    assert nodes["linear1.weight"]["value"] == [[-1.0, 0.5], [4.0, 5.0], [6.0, -3.0]]
    assert nodes["linear1.bias"]["value"] == [-1.0, -2.0, -3.0]
    # Z1 = X W1^T + b1 by hand: X = [[1,2],[3,4]]
    assert nodes["Z1"]["value"] == [[-1.0, 12.0, -3.0], [-2.0, 30.0, 3.0]]


def test_set_class_index(capsys):
    nodes = show_json(capsys, "softmax_classifier", "--set", "classes[3]=0")
    assert nodes["classes"]["value"] == [0, 1, 2, 0]


def test_set_then_steps_and_lr(capsys):
    nodes = show_json(capsys, "linear_regression", "--set", "w=2", "--steps", "1", "--lr", "0.1")
    # from w = 2: d = -10, dJ/dw = 30, dJ/db = -10
    assert nodes["w"]["value"] == pytest.approx(2 - 3.0)
    assert nodes["b"]["value"] == pytest.approx(1 + 1.0)
    assert nodes["_"]["loss_history"][0] == 50.0 and len(nodes["_"]["loss_history"]) == 2


BAD_SETS = [
    (["--set", "q=1"], "unknown leaf 'q'"),
    (["--set", "J=1"], "unknown leaf 'J'"),
    (["--set", "linear1.weight[5,0]=1"], "index 5 is out of range 0..2 in dimension 0"),
    (["--set", "linear1.weight[0]=1"], "give 2 index(es), got 1"),
    (["--set", "linear1.bias=1"], "give 1 index(es), got 0"),
    (["--set", "linear1.weight[a,0]=1"], "write NAME=VALUE or 'NAME[i,j]=VALUE'"),
    (["--set", "linear1.weight[0,-1]=1"], "write NAME=VALUE or 'NAME[i,j]=VALUE'"),
    (["--set", "linear1.weight[0,,1]=1"], "indices must be whole numbers"),
    (["--set", "X[0,0]=abc"], "not a number: 'abc'"),
    (["--set", "X[0,0]="], "enter a number"),
    (["--set", "X[0,0]=0x10"], "not a number"),
    (["--set", "X[0,0]=1_000"], "not a number"),
    (["--set", "X[0,0]=nan"], "nan is not allowed: values must be finite"),
    (["--set", "X[0,0]=inf"], "inf is not allowed: values must be finite"),
    (["--set", "X[0,0]=-Infinity"], "not allowed: values must be finite"),
    (["--set", "X[0,0]=1e39"], "out of float32 range"),
    (["--set", "X[0,0]"], "write NAME=VALUE"),
    (["--set", "=1"], "write NAME=VALUE"),
]


@pytest.mark.parametrize(("args", "message"), BAD_SETS, ids=[a[1] for a, _ in BAD_SETS])
def test_bad_set_exits_2_with_a_clear_message(capsys, args, message):
    code, out, err = run(capsys, "show", "simple_nn", *args)
    assert code == 2
    assert out == ""
    assert err.startswith("backprop-tui: "), err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_bad_set_on_class_indices(capsys):
    code, _, err = run(capsys, "show", "softmax_classifier", "--set", "classes[0]=1.5")
    assert code == 2 and "not a whole number" in err


def test_set_that_torch_refuses_exits_with_a_message(capsys):
    code, out, err = run(capsys, "show", "softmax_classifier", "--set", "classes[0]=7")
    assert code in (1, 2) and out == ""
    assert "torch cannot compute this" in err and "nothing changed" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "simple_nn", "--format", "xml"], "invalid choice: 'xml'"),
        (["show", "simple_nn", "--steps", "-1"], "--steps: must be between 0 and 100000"),
        (["show", "simple_nn", "--steps", "two"], "invalid int value"),
        (["show", "simple_nn", "--lr", "-0.5", "--steps", "1"], "learning rate must be a positive finite number"),
        (["show", "simple_nn", "--lr", "nan"], "learning rate must be a positive finite number"),
        (["show"], "PRESET: required"),
        (["show", "simple_nn", "--bogus"], "--bogus: unrecognized argument"),
        (["check"], "PRESET: required"),
        (["a", "b"], "b: unexpected after PRESET 'a'"),
    ],
)
def test_usage_errors_exit_2(capsys, args, message):
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert message in err, err


def test_show_unknown_preset_exits_1(capsys):
    code, out, err = run(capsys, "show", "no_such_preset")
    assert code == 1 and out == ""
    assert "no preset named 'no_such_preset' and no such file; bundled: " in err
    assert "simple_nn" in err


def test_show_invalid_file_exits_1_with_one_line(capsys, tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('output = "J"\n[tensors.x]\nrole = "input"\nvalue = 1.0\n[[steps]]\nname = "J"\nexpr = "x * z"\n')
    code, out, err = run(capsys, "show", str(path))
    assert code == 1 and out == ""
    assert err.strip() == "backprop-tui: PRESET: broken.toml: step 'J' (steps[0]): unknown name 'z'"


# ---------------------------------------------------------------- markdown and dot


def test_markdown(capsys):
    code, out, err = run(capsys, "show", "simple_nn", "--format", "markdown")
    assert code == 0 and err == ""
    assert out.startswith("# Simple neural network")
    assert "| node | kind | expression | shape | value | grad | grad_fn |" in out
    for name in ("X", "Y", "linear1.weight", "linear1.bias", "Z1", "A1", "Z2", "A2", "Z3", "A3", "J"):
        assert f"| `{name}` |" in out, name
    j_row = next(line for line in out.splitlines() if line.startswith("| `J` |"))
    assert "0.0130999" in j_row and "output" in j_row
    x_row = next(line for line in out.splitlines() if line.startswith("| `X` |"))
    assert "no grad" in x_row


def test_markdown_with_steps_has_the_loss_history(capsys):
    code, out, _ = run(capsys, "show", "linear_regression", "--format", "markdown", "--steps", "1")
    assert code == 0 and "Loss history: 84.5, " in out


def test_dot(capsys):
    code, out, err = run(capsys, "show", "simple_nn", "--format", "dot")
    assert code == 0 and err == ""
    assert out.startswith("digraph backprop {") and out.rstrip().endswith("}")
    for name in ("X", "linear1.weight", "Z1", "A3", "J"):
        assert f'  "{name}" [label=' in out, name
    for edge in (
        '"X" -> "Z1"',
        '"linear1.weight" -> "Z1"',
        '"linear1.bias" -> "Z1"',
        '"Z1" -> "A1"',
        '"Y" -> "J"',
        '"A3" -> "J"',
    ):
        assert edge in out, edge
    assert out.count("->") == sum(len(n.inputs) for n in _snapshot("simple_nn").nodes)


def _snapshot(name):
    from backprop_tui.engine import Session, load_preset

    return Session(load_preset(bundled_presets()[name])).snapshot


# ---------------------------------------------------------------- check


def test_check_accepts_every_bundled_preset(capsys):
    paths = [str(p) for p in bundled_presets().values()]
    code, out, err = run(capsys, "check", *paths)
    assert code == 0 and err == ""
    assert out.splitlines() == [f"{p}: ok" for p in paths]


def test_check_reports_one_line_per_problem(capsys, tmp_path):
    good = bundled_presets()["scalar_chain"]
    bad_name = tmp_path / "bad_name.toml"
    bad_name.write_text(good.read_text().replace('expr = "x + 5"', 'expr = "z + 5"'))
    bad_toml = tmp_path / "bad_toml.toml"
    bad_toml.write_text('output = "f"\n[tensors.x\nrole = "input"\n')
    bad_shape = tmp_path / "bad_shape.toml"
    bad_shape.write_text(
        'output = "J"\n[tensors.a]\nrole = "input"\nvalue = [1.0, 2.0]\n'
        '[tensors.b]\nrole = "input"\nvalue = [1.0, 2.0, 3.0]\n'
        '[[steps]]\nname = "J"\nexpr = "sum(a + b)"\n'
    )
    missing = tmp_path / "missing.toml"
    code, out, err = run(capsys, "check", str(good), str(bad_name), str(bad_toml), str(bad_shape), str(missing))
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 5
    assert lines[0] == f"{good}: ok"
    assert lines[1] == "bad_name.toml: step 'h' (steps[0]): unknown name 'z'"
    assert lines[2].startswith("bad_toml.toml: TOML syntax error: ") and "line 2" in lines[2]
    assert lines[3] == "bad_shape.toml: step 'J' (steps[0]): shape mismatch in '+': shapes [2] and [3] do not broadcast"
    assert lines[4].startswith("missing.toml: cannot read file")


# ---------------------------------------------------------------- special files and odd paths


def test_check_refuses_devices_and_fifos_and_checks_every_file(tmp_path):
    """/dev/zero never ends and a FIFO nobody writes to blocks a reader: each is one line, at once.

    Run in a child process with a timeout, so that a reader that blocks fails this test
    instead of hanging the suite."""
    import subprocess
    import sys

    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    link = tmp_path / "zero.toml"
    link.symlink_to("/dev/zero")
    argv = ["check", "/dev/zero", "/dev/urandom", str(fifo), str(link), str(tmp_path), "scalar_chain"]
    result = subprocess.run([sys.executable, "-m", "backprop_tui", *argv], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr == ""
    assert result.stdout.splitlines() == [
        "zero: not a regular file but a character device",
        "urandom: not a regular file but a character device",
        "pipe.toml: not a regular file but a FIFO (named pipe)",
        "zero.toml: not a regular file but a character device",
        f"{tmp_path.name}: not a regular file but a folder",
        "scalar_chain: ok",
    ]


@pytest.mark.parametrize("command", ["show", "check"])
def test_an_unknown_user_or_a_too_long_name_is_one_line(capsys, command):
    long_name = "a" * 300 + ".toml"
    for spec, message in (("~nosuchuser_backprop/x.toml", "~nosuchuser_backprop: no such user"),
                          (long_name, "File name too long")):
        code, out, err = run(capsys, command, spec)
        assert code == 1
        text = err if command == "show" else out
        assert len(text.strip().splitlines()) == 1 and message in text and "Traceback" not in text + err


def test_check_goes_on_after_an_unexpected_error(capsys, monkeypatch, tmp_path):
    """An exception that is not the file's fault (a bug) is one line too, and the files after
    it are still checked."""
    from backprop_tui.engine import preset as preset_module

    real = preset_module.parse_preset

    def failing(text, source="<text>", default_name="custom"):
        if source.endswith("b.toml"):
            raise ValueError("Exceeds the limit (4300 digits)\nsecond line")
        return real(text, source=source, default_name=default_name)

    monkeypatch.setattr(preset_module, "parse_preset", failing)
    good = bundled_presets()["scalar_chain"].read_text()
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.toml").write_text(good)
    code, out, err = run(capsys, "check", *(str(tmp_path / f"{n}.toml") for n in "abc"))
    assert code == 1 and err == ""
    assert out.splitlines() == [
        f"{tmp_path / 'a.toml'}: ok",
        "b.toml: cannot check: ValueError: Exceeds the limit (4300 digits)",
        f"{tmp_path / 'c.toml'}: ok",
    ]


def test_huge_numbers_are_shortened_without_printing_them():
    """Python refuses str() of an int past 4,300 digits; the message never needs it."""
    from backprop_tui.engine.numbers import int_digits, short_number, shown

    assert short_number(10**4999) == "100000000000… (5000 digits)"
    assert short_number(-(2**8000)) == f"-{str(2**8000)[:12]}… (2409 digits)"
    assert [int_digits(n) for n in (0, 9, 10, 99, 100, 10**80 - 1, 10**80)] == [1, 1, 2, 2, 3, 80, 81]
    assert shown([1.5, 16**2000 - 1]) == "[1.5, 173766203193… (2409 digits)]"
    assert shown(list(range(100))).endswith(", …]") and len(shown(list(range(100)))) < 70


def test_show_names_the_file_whose_values_torch_refuses(capsys):
    from pathlib import Path

    corpus = Path(__file__).resolve().parents[1] / "data" / "bad_presets"
    code, out, err = run(capsys, "show", str(corpus / "compute_initial_bce_out_of_range.toml"))
    assert code == 1 and out == ""
    assert err == (
        "backprop-tui: PRESET: compute_initial_bce_out_of_range.toml: cannot compute the initial values: "
        "step 'J': cannot compute bce() on shapes [1], [1]: all elements of input should be between 0 and 1\n"
    )


def test_sgd_on_an_int_output_gives_the_true_reason(capsys, tmp_path):
    """x requires grad, but argmax(x) is an int tensor: SGD has nothing to do because the
    output has no gradient, not because no leaf requires grad."""
    path = tmp_path / "argmax.toml"
    path.write_text('output = "J"\n[tensors.x]\nrole = "parameter"\nvalue = [1.0, 3.0, 2.0]\n'
                    '[[steps]]\nname = "J"\nexpr = "argmax(x)"\n')
    code, out, err = run(capsys, "show", str(path), "--steps", "1")
    assert code == 1
    assert err == (
        "backprop-tui: --steps 1: step 1: J is an int tensor, which has no gradient (argmax gives positions): "
        "no leaf gets one: there is nothing for SGD to update\n"
    )
