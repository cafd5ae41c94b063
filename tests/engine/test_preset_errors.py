"""Every problem in a preset file is one clear line that names the file and the table or step.

Each case is a small file written to tmp_path and loaded with `load_preset`; the message
must be a single line, start with the file's name, name where the problem is, and say
what is wrong (asserted on substrings). Never a traceback, never another exception type.
"""

from __future__ import annotations

import textwrap

import pytest

from backprop_tui.engine import PresetError, load_preset

GOOD = """\
name = "tiny"
output = "J"

[tensors.x]
role = "input"
value = [1.0, 2.0]

[tensors.w]
role = "parameter"
value = [0.5, -1.0]

[[steps]]
name = "c"
expr = "w * x"

[[steps]]
name = "J"
expr = "sum(c)"
"""

LINEAR = """\
output = "J"

[tensors.X]
role = "input"
value = [[1.0, 2.0]]

[modules.lin]
type = "Linear"
in_features = 2
out_features = 3
{module}

[[steps]]
name = "Z"
expr = "{expr}"

[[steps]]
name = "J"
expr = "sum(Z)"
"""


def tensor(body: str, expr: str = "sum(x)") -> str:
    return f'output = "J"\n\n[tensors.x]\n{textwrap.dedent(body)}\n[[steps]]\nname = "J"\nexpr = "{expr}"\n'


def linear(module: str, expr: str = "lin(X)") -> str:
    return LINEAR.format(module=textwrap.dedent(module), expr=expr)


def steps(*pairs: tuple[str, str], output: str = "J") -> str:
    body = "".join(f'\n[[steps]]\nname = "{n}"\nexpr = "{e}"\n' for n, e in pairs)
    return (
        f'output = "{output}"\n\n[tensors.x]\nrole = "input"\nvalue = [1.0, 2.0]\n\n'
        f'[tensors.w]\nrole = "parameter"\nvalue = [1.0, 2.0, 3.0]\n{body}'
    )


CASES = {
    # TOML syntax, with its line
    "toml syntax": (GOOD.replace('role = "parameter"', 'role = "parameter'), ["TOML syntax error", "line 9,"]),
    "toml duplicate table": (
        GOOD + '\n[tensors.x]\nrole = "input"\nvalue = 1.0\n',
        ["TOML syntax error", "Cannot declare", "line 20,"],
    ),
    "empty file": ("\n\n", ["file is empty"]),
    # names
    "unknown name": (GOOD.replace('"w * x"', '"w * z"'), ["step 'c' (steps[0])", "unknown name 'z'"]),
    "use before definition": (
        steps(("c", "J * 2"), ("J", "sum(w)")),
        ["step 'c' (steps[0])", "uses 'J' before it is defined"],
    ),
    "uses itself": (steps(("J", "sum(J)")), ["step 'J' (steps[0])", "uses itself"]),
    "duplicate step and tensor": (
        steps(("x", "w * 2"), ("J", "sum(x)")),
        ["step 'x'", "duplicate name 'x' (already used by [tensors.x])"],
    ),
    "duplicate steps": (steps(("J", "sum(w)"), ("J", "sum(x)")), ["step 'J'", "duplicate name 'J'"]),
    "duplicate module and tensor": (
        GOOD + '\n[modules.x]\ntype = "Linear"\nin_features = 2\nout_features = 1\n',
        ["[modules.x]", "duplicate name 'x' (already used by [tensors.x])"],
    ),
    "name is a function": (
        tensor('role = "input"\nvalue = 1.0').replace("[tensors.x]", "[tensors.relu]"),
        ["[tensors.relu]", "'relu' is the name of a function"],
    ),
    "invalid name": (
        tensor('role = "input"\nvalue = 1.0').replace("[tensors.x]", '[tensors."my-x"]'),
        ["[tensors.my-x]", "'my-x' is not a valid name"],
    ),
    "dunder name": (
        tensor('role = "input"\nvalue = 1.0').replace("[tensors.x]", "[tensors.__x]"),
        ["[tensors.__x]", "is not a valid name"],
    ),
    "module not called": (linear('seed = 1', "lin * 2"), ["step 'Z' (steps[0])", "'lin' is a module; call it"]),
    "forbidden expression": (
        GOOD.replace('"w * x"', '"w.data * x"'),
        ["step 'c' (steps[0])", "attribute access '.data'"],
    ),
    # shapes
    "shape mismatch": (
        steps(("c", "w * x"), ("J", "sum(c)")),
        ["step 'c' (steps[0])", "shape mismatch in '*'", "[3] and [2]"],
    ),
    "matmul mismatch": (
        tensor('role = "input"\nvalue = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]', "sum(x @ x)"),
        ["step 'J' (steps[0])", "shape mismatch in '@'", "[2, 3] @ [2, 3]", "inner sizes 3 and 2 differ"],
    ),
    "module input mismatch": (
        linear("seed = 1", "lin(X.T)"),
        ["step 'Z' (steps[0])", "lin() expects inputs with last dimension 2 (in_features), got shape [2, 1]"],
    ),
    "loss shape mismatch": (
        steps(("J", "mse(w, x)")),
        ["step 'J' (steps[0])", "shape mismatch in mse()", "prediction [3] and target [2] differ"],
    ),
    "cross_entropy float target": (
        steps(("J", "cross_entropy(w, x)")),
        ["step 'J' (steps[0])", "cross_entropy() needs class indices"],
    ),
    "transpose of 3d": (
        tensor('role = "input"\nshape = [2, 2, 2]\ninit = "zeros"', "sum(x.T)"),
        ["step 'J' (steps[0])", "'.T' needs at most 2 dimensions"],
    ),
    # the output
    "output not scalar": (
        GOOD.replace('output = "J"', 'output = "c"'),
        ["output 'c'", "must be a scalar cost, but has shape [2]"],
    ),
    "output is a tensor": (GOOD.replace('output = "J"', 'output = "x"'), ["output", "'x' is a tensor, not a step"]),
    "output unknown": (GOOD.replace('output = "J"', 'output = "K"'), ["output", "'K' is not a step"]),
    "output missing": (GOOD.replace('output = "J"\n', ""), ["missing 'output'", 'output = "J"']),
    # roles and values
    "bad role": (
        tensor('role = "weight"\nvalue = 1.0'),
        ["[tensors.x]", "role must be one of input, target, parameter, got 'weight'"],
    ),
    "missing role": (tensor("value = 1.0"), ["[tensors.x]", "missing 'role': one of input, target, parameter"]),
    "string value": (tensor('role = "input"\nvalue = "abc"'), ["[tensors.x]", "'value' holds 'abc'; only numbers"]),
    "string in list": (
        tensor('role = "input"\nvalue = [1.0, "2"]'),
        ["[tensors.x]", "'value' holds '2'; only numbers"],
    ),
    "bool value": (tensor('role = "input"\nvalue = true'), ["[tensors.x]", "'value' holds True; only numbers"]),
    "inf value": (tensor('role = "input"\nvalue = inf'), ["[tensors.x]", "'value' holds inf; values must be finite"]),
    "-inf in list": (
        tensor('role = "input"\nvalue = [1.0, -inf]'),
        ["[tensors.x]", "holds -inf; values must be finite"],
    ),
    "nan value": (tensor('role = "input"\nvalue = nan'), ["[tensors.x]", "holds nan; values must be finite"]),
    "out of float32 range": (tensor('role = "input"\nvalue = 1e39'), ["[tensors.x]", "out of float32 range"]),
    "ragged list": (tensor('role = "input"\nvalue = [[1.0, 2.0], [3.0]]'), ["[tensors.x]", "rectangular nested list"]),
    "empty list": (tensor('role = "input"\nvalue = []'), ["[tensors.x]", "rectangular nested list"]),
    "five dimensions": (tensor('role = "input"\nvalue = [[[[[1.0]]]]]'), ["[tensors.x]", "rectangular nested list"]),
    "table value": (tensor('role = "input"\nvalue = {a = 1}'), ["[tensors.x]", "only numbers"]),
    "no value": (tensor('role = "input"'), ["[tensors.x]", "needs 'value'"]),
    "value and shape": (
        tensor('role = "input"\nvalue = 1.0\nshape = [1]'),
        ["[tensors.x]", "either 'value' or 'shape' + 'init'"],
    ),
    "bad dtype": (
        tensor('role = "input"\nvalue = 1.0\ndtype = "float64"'),
        ["[tensors.x]", "dtype must be 'float' or 'int'"],
    ),
    "fraction in int tensor": (
        tensor('role = "target"\ndtype = "int"\nvalue = [1, 2.5]', "sum(x * 1.0)"),
        ["[tensors.x]", "whole numbers"],
    ),
    "int requires grad": (
        tensor('role = "target"\ndtype = "int"\nvalue = [1]\nrequires_grad = true'),
        ["[tensors.x]", "an int tensor cannot require grad"],
    ),
    "requires_grad not bool": (
        tensor('role = "input"\nvalue = 1.0\nrequires_grad = "yes"'),
        ["[tensors.x]", "requires_grad must be true or false"],
    ),
    "note not string": (
        tensor('role = "input"\nvalue = 1.0\nnote = 3'),
        ["[tensors.x]", "'note' must be a string, got an integer"],
    ),
    "bad init": (
        tensor('role = "input"\nshape = [2]\ninit = "normal"'),
        ["[tensors.x]", "init must be one of zeros, ones, randn, rand, randint"],
    ),
    "bad shape": (
        tensor('role = "input"\nshape = [2, 0]\ninit = "zeros"'),
        ["[tensors.x]", "shape must be a list of up to 4 positive integers"],
    ),
    "negative seed": (
        tensor('role = "input"\nshape = [2]\ninit = "randn"\nseed = -1'),
        ["[tensors.x]", "seed must be a non-negative integer"],
    ),
    "randint without high": (
        tensor('role = "target"\ndtype = "int"\nshape = [2]\ninit = "randint"'),
        ["[tensors.x]", "needs 'high'"],
    ),
    "randint on float": (
        tensor('role = "input"\nshape = [2]\ninit = "randint"\nhigh = 3'),
        ["[tensors.x]", "'randint' goes with dtype 'int'"],
    ),
    "high without randint": (
        tensor('role = "input"\nshape = [2]\ninit = "zeros"\nhigh = 3'),
        ["[tensors.x]", "'high' is only for init 'randint'"],
    ),
    "tensor not a table": (
        'output = "J"\ntensors = 3\n[[steps]]\nname = "J"\nexpr = "1"\n',
        ["tensors", "must be a table"],
    ),
    "learning rate negative": (
        GOOD.replace('output = "J"', 'output = "J"\nlearning_rate = -0.1'),
        ["learning_rate must be a positive number"],
    ),
    "learning rate string": (
        GOOD.replace('output = "J"', 'output = "J"\nlearning_rate = "fast"'),
        ["learning_rate must be a positive number"],
    ),
    "title not string": (GOOD.replace('name = "tiny"', "title = 3"), ["'title' must be a string"]),
    # unknown keys
    "unknown top-level key": (
        GOOD.replace('name = "tiny"', 'name = "tiny"\noutptu = "J"'),
        ["unknown key 'outptu'; allowed: answers, description, exercises, learning_rate"],
    ),
    "unknown tensor key": (tensor('rol = "input"\nvalue = 1.0'), ["[tensors.x]", "unknown key 'rol'; allowed:"]),
    "unknown step key": (
        GOOD.replace('expr = "w * x"', 'expr = "w * x"\nexpression = "x"'),
        ["step 'c' (steps[0])", "unknown key 'expression'"],
    ),
    "unknown module key": (linear("seed = 1\nactivation = \"relu\""), ["[modules.lin]", "unknown key 'activation'"]),
    # steps
    "no steps": ('output = "J"\n[tensors.x]\nrole = "input"\nvalue = 1.0\n', ["missing [[steps]]"]),
    "steps not array of tables": (
        'output = "J"\nsteps = 3\n[tensors.x]\nrole = "input"\nvalue = 1.0\n',
        ["steps", "array of tables"],
    ),
    "step without name": (GOOD.replace('name = "c"\n', ""), ["steps[0]", "needs a 'name'"]),
    "step without expr": (GOOD.replace('expr = "w * x"\n', ""), ["step 'c' (steps[0])", "needs an 'expr'"]),
    "expr not a string": (
        GOOD.replace('expr = "w * x"', "expr = 3"),
        ["step 'c' (steps[0])", "needs an 'expr' (a string)"],
    ),
    "no tensors": ('output = "J"\n[[steps]]\nname = "J"\nexpr = "1"\n', ["missing [tensors] table"]),
    # modules
    "Linear weight of wrong shape": (
        linear("weight = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]\nbias = [0.0, 0.0, 0.0]"),
        ["[modules.lin]", "weight has shape [2, 3], expected [out_features, in_features] = [3, 2]"],
    ),
    "Linear bias of wrong shape": (
        linear("weight = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]\nbias = [0.0, 0.0]"),
        ["[modules.lin]", "bias has shape [2], expected [out_features] = [3]"],
    ),
    "Linear weight without bias values": (
        linear("weight = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]"),
        ["[modules.lin]", "give 'bias' values too (or bias = false)"],
    ),
    "Linear weight and seed": (
        linear("weight = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]\nbias = false\nseed = 1"),
        ["[modules.lin]", "either explicit 'weight' (and 'bias') or 'seed'"],
    ),
    "Linear bias values without weight": (
        linear("bias = [1.0, 2.0, 3.0]"),
        ["[modules.lin]", "bias values need an explicit 'weight'"],
    ),
    "Linear weight with inf": (
        linear("weight = [[1.0, 2.0], [3.0, inf], [5.0, 6.0]]\nbias = false"),
        ["[modules.lin]", "'weight' holds inf; values must be finite"],
    ),
    "module type": (
        linear("seed = 1").replace('"Linear"', '"Conv3d"'),
        [
            "[modules.lin]",
            "type must be one of Linear, Embedding, LayerNorm, BatchNorm1d, Conv1d, Conv2d, got 'Conv3d'",
        ],
    ),
    "module features": (
        linear("seed = 1").replace("in_features = 2", "in_features = 0"),
        ["[modules.lin]", "'in_features' must be a positive integer, got 0"],
    ),
    "module requires_grad": (
        linear("seed = 1\nrequires_grad = 1"),
        ["[modules.lin]", "requires_grad must be true or false"],
    ),
    # a learner's saved answers
    "answers not a table": (
        GOOD.replace('output = "J"', 'output = "J"\nanswers = "dc"'),
        ["answers", 'must be a table of dname = "answer"'],
    ),
    "answer for an unknown node": (
        GOOD + '[answers]\ndq = "1"\n', ["answers", "'dq' is not d + the name of a tensor or step"],
    ),
    "answer for the output": (GOOD + '[answers]\ndJ = "1"\n', ["'dJ' is not d + the name", "other than the output"]),
    "answer not a string": (GOOD + "[answers]\ndc = 3\n", ["answers.dc", "must be a string holding an expression"]),
    "answer too long": (GOOD + f'[answers]\ndc = "{"x+" * 1500}x"\n', ["answers.dc", "the limit is 2,000"]),
    "answer for an unknown exercise": (
        GOOD + '[answers.exercises]\nfused = "1"\n', ["answers.exercises", "'fused' is not one of the preset's"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_problem_is_one_clear_line(tmp_path, case):
    text, expected = CASES[case]
    path = tmp_path / "bad_preset.toml"
    path.write_text(text)
    with pytest.raises(PresetError) as info:
        load_preset(path)
    message = str(info.value)
    assert "\n" not in message, message
    assert "Traceback" not in message
    assert message.startswith("bad_preset.toml: "), message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_the_good_file_loads(tmp_path):
    """The base of the cases above is valid, so each case fails for its own reason."""
    path = tmp_path / "good.toml"
    for text in (GOOD, linear("seed = 1"), tensor('role = "input"\nvalue = 1.0'), steps(("J", "sum(w)"))):
        path.write_text(text)
        load_preset(path)


def test_toml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "syntax.toml"
    lines = GOOD.splitlines()
    lines[14] = 'expr = "w * x'  # line 15: an unterminated string
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(PresetError, match=r"^syntax.toml: TOML syntax error: .*line 15"):
        load_preset(path)


def test_missing_file(tmp_path):
    with pytest.raises(PresetError, match="nothere.toml: cannot read file"):
        load_preset(tmp_path / "nothere.toml")


def test_not_utf8(tmp_path):
    path = tmp_path / "latin.toml"
    path.write_bytes(GOOD.replace("tiny", "t\xefny").encode("latin-1"))
    with pytest.raises(PresetError, match=r"latin.toml: not UTF-8 text \(bad byte at offset"):
        load_preset(path)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(PresetError, match="not a regular file but a folder"):
        load_preset(tmp_path)
