"""Bad answers: an answer is text from a learner (or a file a teacher was sent), so it goes
through the preset's allow-list parser. Each hostile or mistaken answer gets one clear line,
runs no code, opens no file, and makes no tensor past the size limit."""

from __future__ import annotations

import ast
import builtins
import io
import os

import pytest

import backprop_tui.engine  # noqa: F401  (torch is imported here, not inside the guarded calls)
from backprop_tui.cli import main
from backprop_tui.engine import Session, bundled_presets, load_preset
from backprop_tui.engine.exercise import Exercise
from backprop_tui.engine.limits import MAX_EXPR_CHARS

MARKER = "pwned_marker"

# answer for dembcat -> words its error line must hold
BAD_ANSWERS = {
    f"__import__('os').system('touch {MARKER}')": "only functions and declared modules can be called",
    f"open('{MARKER}', 'w')": "'open' is not a function",
    "eval('1')": "'eval' is not a function",
    "dhprebn.__class__": "attribute access '.__class__' is not allowed",
    "lambda: dhprebn": "lambda is not allowed",
    "[c for c in W1]": "a list comprehension is not allowed",
    "f'{W1}'": "an f-string is not allowed",
    "W1 if W1 else W1": "'if ... else' is not allowed",
    "W1 > 0": "a comparison is not allowed",
    "grad(__builtins__)": "grad() takes one node's name",
    "grad(open)": "unknown name 'grad(open)'",
    "grad(embcat)": "uses dembcat itself",
    "dXb": "Xb has no gradient",
    "dnowhere": "unknown name 'dnowhere'",
    "Yb": "is an int tensor; a gradient holds floats",
    "sum(" * 50 + "W1" + ")" * 50: "deeper than",
    "W1 + " * (MAX_EXPR_CHARS // 5 + 1) + "W1": f"the limit is {MAX_EXPR_CHARS:,}",
    "reshape(W1, -1, 1) * reshape(W1, 1, -1)": "an operation makes too large a tensor",
    "C[Xb] @ W1": "shape mismatch in '@'",
    "": "expression is empty",
    "dhprebn @ W1.T\x1b[2J": "U+001B",
}


class _Guard:
    """Records eval/exec/compile of anything but AST parsing, and every file opened."""

    def __init__(self, monkeypatch):
        self.calls: list[str] = []
        real_compile, real_open, real_io_open = builtins.compile, builtins.open, io.open

        def guarded_compile(source, filename, mode, flags=0, *args, **kwargs):
            if not flags & ast.PyCF_ONLY_AST:
                self.calls.append(f"compile({filename!r})")
            return real_compile(source, filename, mode, flags, *args, **kwargs)

        def refuse(name):
            def call(*args, **kwargs):
                self.calls.append(f"{name}{args!r:.60}")
                raise AssertionError(f"{name} while checking an answer")

            return call

        def opened(name, real):
            def call(file, *args, **kwargs):
                self.calls.append(f"{name}({file!r})")
                return real(file, *args, **kwargs)

            return call

        monkeypatch.setattr(builtins, "compile", guarded_compile)
        monkeypatch.setattr(builtins, "eval", refuse("eval"))
        monkeypatch.setattr(builtins, "exec", refuse("exec"))
        monkeypatch.setattr(builtins, "open", opened("open", real_open))
        monkeypatch.setattr(io, "open", opened("io.open", real_io_open))
        monkeypatch.setattr(os, "system", refuse("os.system"))


@pytest.fixture(scope="module")
def makemore():
    session = Session(load_preset(bundled_presets()["makemore_backprop"]))
    return Exercise(session.preset, session.snapshot)


@pytest.mark.parametrize("text, words", list(BAD_ANSWERS.items()), ids=[f"answer{i}" for i in range(len(BAD_ANSWERS))])
def test_bad_answer(text, words, makemore, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    accepted = {"hprebn": makemore.grads["hprebn"]}
    with monkeypatch.context() as patch:
        guard = _Guard(patch)
        verdict = makemore.check("embcat", text, accepted).verdict
    assert guard.calls == []
    assert verdict.status == "error" and not verdict.accepted
    assert words in verdict.diagnosis
    line = verdict.line()
    assert line.isprintable() and len(line) <= 400 and "\n" not in line
    assert not (tmp_path / MARKER).exists()


BAD_FILES = {
    "not_toml.toml": (b"dh = dlogits @ W2.T\n", "not valid TOML"),
    "latin1.toml": ('dh = "\xe9"\n'.encode("latin-1"), "not UTF-8 text"),
    "number.toml": (b"dh = 3\n", "dh must be a string holding an expression"),
    "table.toml": (b"[dh]\nx = 1\n", "dh must be a string holding an expression"),
    "output.toml": (b'dloss = "1.0"\n', "'dloss' is not the gradient of a node of makemore_backprop"),
    "leaf_int.toml": (b'dXb = "Xb"\n', "'dXb' is not the gradient of a node"),
    "no_d.toml": (b'h = "dlogits @ W2.T"\n', "'h' is not the gradient of a node"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_answer_file(name, tmp_path, capsys, monkeypatch):
    data, words = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(data)
    code = main(["exercise", "makemore_backprop", "--answers", str(path)])
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    (line,) = captured.err.splitlines()
    assert words in line and line.isprintable() and len(line) <= 400


def test_special_and_huge_answer_files(tmp_path, capsys):
    big = tmp_path / "big.toml"
    big.write_bytes(b"# " + b"x" * 3_000_000 + b"\n")
    for path, words in ((tmp_path, "not a regular file but a folder"), (big, "bytes; the limit is 2,000,000"),
                        (tmp_path / "none.toml", "cannot read file"),
                        ("/dev/zero", "not a regular file but a character device")):
        code = main(["exercise", "linear_regression", "--answers", str(path)])
        captured = capsys.readouterr()
        assert code == 1 and words in captured.err and len(captured.err.splitlines()) == 1
