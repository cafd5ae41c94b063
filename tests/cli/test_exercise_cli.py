"""`backprop-tui exercise PRESET --answers FILE`: one cmp line per answer, a summary, and the
exit code a course can grade on; JSON with each verdict and maxdiff."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from backprop_tui.cli import main

LINEAR = """\
dd = "d"
df = "dd"
db = "df"
dc = "df"
dw = "dc * x"
"""


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_complete_right_file_exits_0(capsys, tmp_path):
    path = tmp_path / "answers.toml"
    path.write_text(LINEAR)
    code, out, err = _run(capsys, "exercise", "linear_regression", "--answers", str(path))
    lines = out.splitlines()
    assert code == 0 and err == ""
    assert lines[0] == "dd              | exact: True  | approximate: True  | maxdiff: 0.0"
    assert [line.split()[0] for line in lines[:-1]] == ["dd", "df", "db", "dc", "dw"]
    assert lines[-1] == "5 of 5 right (5 exact, 0 approximate)"


def test_a_wrong_or_missing_answer_exits_1_with_its_diagnosis(capsys, tmp_path):
    path = tmp_path / "answers.toml"
    path.write_text('dd = "-d"\ndf = "dd"\n')
    code, out, _ = _run(capsys, "exercise", "linear_regression", "--answers", str(path))
    lines = out.splitlines()
    assert code == 1
    # J = d**2 / 2 at d = 3*(-3) + 1 - 5 = -13: autograd's dd is -13, the answer's 13
    assert lines[0] == (
        "dd              | exact: False | approximate: False | maxdiff: 26.0 | "
        "the sign is flipped: the gradient is minus your answer"
    )
    assert lines[1].startswith("df              | error: the answer for df uses dd, which has no accepted answer yet")
    assert "dc              | missing" in lines
    assert lines[-1] == "0 of 5 right (0 exact, 0 approximate); not right: dd, df; missing: db, dc, dw"


def test_json_carries_each_verdict_and_maxdiff(capsys, tmp_path):
    path = tmp_path / "answers.toml"
    path.write_text('dd = "d * 1.0000001"\ndf = "dd"\n')
    code, out, _ = _run(capsys, "exercise", "linear_regression", "--answers", str(path), "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["passed"] is False and doc["missing"] == ["db", "dc", "dw"]
    first = doc["answers"][0]
    d = torch.tensor(-13.0)
    mine = d * 1.0000001
    assert first["name"] == "dd" and first["status"] == "approximate"
    assert first["exact"] is bool(mine == d) and first["maxdiff"] == (mine - d).abs().item()
    assert doc["answers"][1]["grads_used"] == ["dd"]


def test_a_bad_answer_file_is_one_line_and_exit_1(capsys, tmp_path):
    path = tmp_path / "answers.toml"
    path.write_text('dnothing = "d"\n')
    code, out, err = _run(capsys, "exercise", "linear_regression", "--answers", str(path))
    assert code == 1 and out == ""
    assert err == (
        f"backprop-tui: --answers: {path}: 'dnothing' is not the gradient of a node of linear_regression "
        "(write d + the node's name)\n"
    )
    code, _, err = _run(capsys, "exercise", "linear_regression")  # no file, and the preset holds no answers
    assert code == 2 and err.startswith("backprop-tui: --answers: linear_regression holds no [answers] table")


def test_the_answer_files_exercises_table(capsys, tmp_path):
    path = tmp_path / "answers.toml"
    path.write_text('dlogprobs = "logprobs * 0"\n[exercises]\ndhprebn_fused = "dhpreact"\n')
    code, out, _ = _run(capsys, "exercise", "makemore_backprop", "--answers", str(path))
    assert code == 1
    assert "dhprebn_fused   | error: the answer for dhprebn uses dhpreact, which has no accepted answer yet" in out
    path.write_text('[exercises]\nnope = "logits"\n')
    code, _, err = _run(capsys, "exercise", "makemore_backprop", "--answers", str(path))
    assert code == 1
    assert "'nope' is not an exercise of makemore_backprop (exercises: dlogits_fused, dhprebn_fused)" in err


def test_the_worked_example_in_the_docs_prints_what_it_shows(capsys, tmp_path):
    text = (Path(__file__).resolve().parents[2] / "docs" / "exercises.md").read_text(encoding="utf-8")
    example = text.split("## A worked example: linear regression", 1)[1]
    blocks = example.split("```")
    answers, shown = blocks[1].removeprefix("toml\n"), blocks[3].strip("\n").splitlines()
    path = tmp_path / "answers.toml"
    path.write_text(answers)
    code, out, _ = _run(capsys, "exercise", "linear_regression", "--answers", str(path))
    assert shown[0] == "$ backprop-tui exercise linear_regression --answers answers.toml"
    assert out.splitlines() == shown[1:] and code == 1
    path.write_text(answers.replace('dw = "dc"', 'dw = "dc * x"'))
    assert main(["exercise", "linear_regression", "--answers", str(path)]) == 0


def test_exercise_flag_opens_the_explorer_on_the_exercise(monkeypatch):
    import backprop_tui.ui.app as app_module

    calls = []
    monkeypatch.setattr(app_module, "run_app",
                        lambda preset, exercise=False, autosave=None: calls.append((preset, exercise)) or 0)
    assert main(["makemore_backprop", "--exercise"]) == 0
    assert main(["linear_regression"]) == 0
    assert calls == [("makemore_backprop", True), ("linear_regression", False)]
SOLUTION = Path(__file__).resolve().parents[1] / "data" / "exercises" / "makemore_part4.toml"


def test_the_full_makemore_part4_solution_passes(capsys):
    code, out, _ = _run(capsys, "exercise", "makemore_backprop", "--answers", str(SOLUTION), "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["passed"] is True and doc["missing"] == []
    answers = {a["name"]: a for a in doc["answers"]}
    assert len(answers) == 28 and all(a["status"] in ("exact", "approximate") for a in answers.values())
    assert all(a["exact"] for name, a in answers.items() if name in ("dlogprobs", "dprobs", "dlogits", "dW2"))
    fused = answers["dlogits_fused"]
    assert fused["status"] == "approximate" and fused["maxdiff"] < 1e-8  # as in the notebook
    assert answers["dC"]["grads_used"] == ["demb"]
    code, out, _ = _run(capsys, "exercise", "makemore_backprop", "--answers", str(SOLUTION))
    assert out.splitlines()[-1] == "28 of 28 right (11 exact, 17 approximate)"


def test_a_saved_presets_own_answers_are_graded_without_an_answer_file(capsys, tmp_path):
    from backprop_tui.engine.preset import presets_dir

    source = (presets_dir() / "linear_regression.toml").read_text()
    path = tmp_path / "saved.toml"
    path.write_text(source + "\n[answers]\n" + LINEAR)
    code, out, err = _run(capsys, "exercise", str(path))
    assert code == 0 and err == "" and out.splitlines()[-1] == "5 of 5 right (5 exact, 0 approximate)"
    code, out, err = _run(capsys, "exercise", "linear_regression")
    assert code == 2 and out == ""
    assert "linear_regression holds no [answers] table: give an answer file with --answers FILE" in err
