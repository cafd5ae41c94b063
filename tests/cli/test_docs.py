"""docs/presets.md tells the truth: its examples pass `backprop-tui check`, its error
messages are the real ones, and it covers every key, function and limit of the format.

Blocks are marked in the Markdown with an HTML comment on the line before them:
`<!-- complete example: NAME.toml -->` before a ```toml block that must be valid, and
`<!-- error example: NAME.toml -->` before a ```toml block followed by a ```text block
holding exactly what `backprop-tui check NAME.toml` prints for it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from backprop_tui.cli import main
from backprop_tui.engine import limits, preset
from backprop_tui.engine.functions import FUNCTIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "presets.md"
TEXT = DOC.read_text(encoding="utf-8")

COMPLETE = re.findall(r"<!-- complete example: (\S+\.toml) -->\n```toml\n(.*?)```", TEXT, re.S)
ERRORS = re.findall(
    r"<!-- error example: (\S+\.toml) -->\n```toml\n(.*?)```\s*```text\n(.*?)```", TEXT, re.S
)


def test_the_page_has_examples():
    assert len(COMPLETE) >= 2
    assert len(ERRORS) >= 5
    assert len({name for name, _ in COMPLETE}) == len(COMPLETE)
    # every marker was matched: a marker before a malformed block would otherwise be skipped
    assert TEXT.count("<!-- complete example:") == len(COMPLETE)
    assert TEXT.count("<!-- error example:") == len(ERRORS)


@pytest.mark.parametrize(("name", "body"), COMPLETE, ids=[n for n, _ in COMPLETE])
def test_complete_example_passes_check(name, body, tmp_path, monkeypatch, capsys):
    (tmp_path / name).write_text(body)
    monkeypatch.chdir(tmp_path)
    assert main(["check", name]) == 0
    assert capsys.readouterr().out == f"{name}: ok\n"
    assert main(["show", name, "--format", "json", "--steps", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["loss_history"]) == 2
    assert all(isinstance(x, float) and x == x for x in data["loss_history"])


@pytest.mark.parametrize(("name", "body", "expected"), ERRORS, ids=[n for n, _, _ in ERRORS])
def test_error_example_prints_the_documented_message(name, body, expected, tmp_path, monkeypatch, capsys):
    (tmp_path / name).write_text(body)
    monkeypatch.chdir(tmp_path)
    assert main(["check", name]) == 1
    assert capsys.readouterr().out == expected


def test_complete_examples_with_the_installed_command(tmp_path):
    for name, body in COMPLETE:
        (tmp_path / name).write_text(body)
    script = Path(sys.executable).with_name("backprop-tui")
    result = subprocess.run(
        [str(script), "check", *(name for name, _ in COMPLETE)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [f"{name}: ok" for name, _ in COMPLETE]


def show(name: str, body: str, tmp_path, capsys, *args: str) -> dict:
    path = tmp_path / name
    path.write_text(body)
    assert main(["show", str(path), "--format", "json", *args]) == 0
    data = json.loads(capsys.readouterr().out)
    return {n["name"]: n for n in data["nodes"]} | {"_": data}


def test_numbers_stated_in_the_text(tmp_path, capsys):
    bodies = dict(COMPLETE)
    first = show("first.toml", bodies["first.toml"], tmp_path, capsys)
    assert first["f"]["value"] == 16.0 and first["a"]["grad"] == 8.0
    assert first["_"]["preset"] == "first" and first["a"]["requires_grad"] is True
    assert "`f = 16` and `df/da = 8`" in TEXT

    xor = show("xor_tanh.toml", bodies["xor_tanh.toml"], tmp_path, capsys)
    assert "J is about 0.689, a little under log 2" in TEXT
    assert abs(xor["J"]["value"] - 0.689) < 0.0005 and xor["J"]["value"] < 0.6931
    trained = show("xor_tanh.toml", bodies["xor_tanh.toml"], tmp_path, capsys, "--steps", "200")
    assert "after 200 SGD steps J is about 0.05" in TEXT
    assert 0.045 < trained["J"]["value"] < 0.055
    assert show("xor_tanh.toml", bodies["xor_tanh.toml"], tmp_path, capsys, "--set", "v[0,1]=-2")["v"]["value"] == [
        [xor["v"]["value"][0][0], -2.0]
    ]

    classes = show("three_classes.toml", bodies["three_classes.toml"], tmp_path, capsys)
    assert classes["probs"]["grad"] is None and classes["logits"]["grad"] is not None


# ---------------------------------------------------------------- the page covers the format


def test_every_function_is_documented_with_its_keywords():
    for name, spec in FUNCTIONS.items():
        row = next((line for line in TEXT.splitlines() if line.startswith(f"| `{name}(")), None)
        assert row is not None, f"function {name} is missing from the functions table"
        for keyword in spec.keywords:
            assert f"`{keyword}=" in row, f"{name}: keyword {keyword} is not documented"
        for keyword, default in spec.defaults.items():
            assert f"`{keyword}=` (default `{default}`)" in row


def test_the_function_table_is_the_registrys():
    """docs/presets.md's table of functions is written from the registry, row for row."""
    from backprop_tui.engine.function_docs import function_table

    table = function_table()
    assert table in TEXT, "regenerate with: python -m backprop_tui.engine.function_docs"
    assert len(table.splitlines()) == 2 + len(FUNCTIONS)


def test_every_key_is_documented():
    for key in preset._TOP_KEYS - {"tensors", "modules", "steps", "exercises", "answers"}:
        assert f"| `{key}` |" in TEXT, key
    for table in ("[tensors.NAME]", "[modules.NAME]", "[[steps]]", "[[exercises]]", "[answers]"):
        assert f"| `{table}` |" in TEXT, table
    for key in preset._TENSOR_KEYS | preset._MODULE_KEYS | preset._STEP_KEYS | preset._EXERCISE_KEYS:
        assert f"| `{key}` |" in TEXT, key
    for word in (*preset.ROLES, *preset.INITS, *preset.MODULE_TYPES):
        assert f'`"{word}"`' in TEXT, word
    assert f"defaults to `{preset.DEFAULT_LEARNING_RATE}`" in TEXT


def test_every_module_option_is_documented():
    from backprop_tui.engine.modules import KINDS

    for kind in KINDS.values():
        assert f"| `\"{kind.type}\"` | `torch.nn.{kind.type}`" in TEXT, kind.type
        for option in kind.options:
            row = next((line for line in TEXT.splitlines() if line.startswith(f"| `{option.key}` |")), None)
            assert row is not None and kind.type in row, f"{kind.type}: option {option.key} is not documented"


def test_every_limit_is_documented():
    for name in (
        "MAX_FILE_BYTES",
        "MAX_EXPR_CHARS",
        "MAX_STEPS",
        "MAX_LEAVES",
        "MAX_ELEMENTS_PER_TENSOR",
        "MAX_ELEMENTS_TOTAL",
    ):
        value = getattr(limits, name)
        assert f"| {value:,}" in TEXT or f"| {value:,} " in TEXT, f"{name} = {value:,} is not in the limits table"
    assert f"{limits.MAX_EXPR_DEPTH} levels of brackets" in TEXT


def test_stated_nesting_limits():
    from backprop_tui.engine import PresetError
    from backprop_tui.engine.expr import parse_expression

    assert "at most 39 terms" in TEXT and "at most 38 nested calls" in TEXT
    parse_expression("x" + " + x" * 38)
    parse_expression("relu(" * 38 + "x" + ")" * 38)
    with pytest.raises(PresetError):
        parse_expression("x" + " + x" * 39)
    with pytest.raises(PresetError):
        parse_expression("relu(" * 39 + "x" + ")" * 39)


def test_every_toml_snippet_is_valid_toml():
    import tomllib

    blocks = re.findall(r"```toml\n(.*?)```", TEXT, re.S)
    assert len(blocks) > len(COMPLETE) + len(ERRORS)  # the fragments too
    for block in blocks:
        if "Unclosed array" in TEXT and block.startswith(
            'output = "J"\n\n[tensors.x]\nrole = "input"\nvalue = [1.0, 2.0\n'
        ):
            continue  # the syntax-error example
        tomllib.loads(block)
