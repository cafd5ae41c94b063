"""The expression language: what it accepts, what it rejects (one clear line each), its limits.

The parser is an allow-list over Python's `ast`; nothing is ever evaluated by Python.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from backprop_tui.engine import PresetError, load_preset, parse_preset
from backprop_tui.engine import limits
from backprop_tui.engine.expr import (
    FUNCTIONS,
    INDEX,
    BinOp,
    Call,
    ModuleCall,
    Neg,
    Num,
    Ref,
    Transpose,
    parse_expression,
    unparse,
)

MODULES = {"linear1"}


def rejected(text: str, modules=MODULES) -> str:
    with pytest.raises(PresetError) as info:
        parse_expression(text, modules)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# ---------------------------------------------------------------- forbidden forms

FORBIDDEN = [
    # (expression, a substring of the message)
    ("x.shape", "attribute access '.shape' is not allowed; only '.T'"),
    ("x.data", "attribute access '.data' is not allowed"),
    ("x.T.grad", "attribute access '.grad' is not allowed"),
    ("x.__class__", "attribute access '.__class__' is not allowed"),
    ("__builtins__", "name '__builtins__' is not allowed"),
    ("_x + 1", "name '_x' is not allowed"),
    ("a__b * 2", "name 'a__b' is not allowed"),
    ("__import__('os')", "'__import__' is not a function or declared module"),
    ("lambda x: x", "lambda is not allowed"),
    ("(lambda: 1)()", "only functions and declared modules can be called, by name"),
    ("[x for x in y]", "a list comprehension is not allowed"),
    ("{x for x in y}", "a set comprehension is not allowed"),
    ("{x: x for x in y}", "a dict comprehension is not allowed"),
    ("sum(x for x in y)", "a generator expression is not allowed"),
    ("(x for x in y)", "a generator expression is not allowed"),
    ("f'{x}'", "an f-string is not allowed"),
    ("(y := x)", "':=' (walrus) is not allowed"),
    ("x[1.5]", "an index must be a whole number, a slice or an int tensor, not 1.5"),
    ("x[a:2]", "a slice bound must be a whole number written in the expression"),
    ("x[::0]", "a slice's step must be a positive whole number"),
    ("x[range(0)]", "range(0) is empty"),
    ("x[range(n)]", "range()'s argument must be a whole number"),
    ("range(3)", "range() is only allowed inside an index"),
    ("reshape(x)", "reshape() takes a tensor and whole numbers after it, e.g. reshape(x, 32, -1)"),
    ("one_hot(c)", "one_hot() takes a tensor and whole numbers after it, e.g. one_hot(classes, num_classes)"),
    ("reshape(x, -1, -1)", "at most one -1"),
    ("view(x, 0, 2)", "view() sizes must be positive"),
    ("x < y", "a comparison is not allowed"),
    ("x == y", "a comparison is not allowed"),
    ("x and y", "'and'/'or' is not allowed"),
    ("x if y else z", "'if ... else' is not allowed"),
    ("not x", "unary operator Not is not allowed"),
    ("~x", "unary operator Invert is not allowed"),
    ("x % y", "operator Mod is not allowed; use + - * / ** @"),
    ("x // y", "operator FloorDiv is not allowed"),
    ("x << 1", "operator LShift is not allowed"),
    ("'abc'", "constant 'abc' is not allowed; only numbers"),
    ("True", "constant True is not allowed; only numbers"),
    ("None", "constant None is not allowed"),
    ("1j * x", "constant 1j is not allowed"),
    ("[1, 2]", "a list literal is not allowed"),
    ("(x, y)", "a tuple is not allowed"),
    ("{1: 2}", "a dict literal is not allowed"),
    ("{1}", "a set literal is not allowed"),
    ("print(x)", "'print' is not a function or declared module; functions: relu"),
    ("eval('1')", "'eval' is not a function or declared module"),
    ("exec('1')", "'exec' is not a function or declared module"),
    ("open('/etc/passwd')", "'open' is not a function or declared module"),
    ("getattr(x, 'T')", "'getattr' is not a function or declared module"),
    ("x.sum()", "only functions and declared modules can be called, by name"),
    ("torch.relu(x)", "only functions and declared modules can be called, by name"),
    ("relu(x)(y)", "only functions and declared modules can be called, by name"),
    ("sum(x, axis=0)", "sum() has no keyword 'axis'; allowed: dim=, keepdim="),
    ("relu(x, inplace=True)", "relu() has no keyword 'inplace'; allowed: none"),
    ("mse(a, b, weight=2)", "mse() has no keyword 'weight'; allowed: reduction="),
    ("sum(x, **kwargs)", "'**' unpacking is not allowed in sum()"),
    ("sum(x, dim=d)", "keyword values must be plain constants"),
    ("sum(x, dim=1.5)", "sum(dim=...) must be an integer"),
    ("leaky_relu(x, negative_slope='a')", "leaky_relu(negative_slope=...) must be a number"),
    ("leaky_relu(x, negative_slope=True)", "leaky_relu(negative_slope=...) must be a number"),
    ("leaky_relu(x, negative_slope=s)", "keyword values must be plain constants (a number, True/False or a string)"),
    ("leaky_relu(x, negative_slope=1e39)", "keyword value 1e+39 is out of float32 range"),
    ("gelu(x, approximate='foo')", "gelu(approximate=...) must be one of 'none', 'tanh'"),
    ("transpose(x, 0)", "transpose() takes a tensor and 2 dimensions, whole numbers, e.g. transpose(x, 0, 1)"),
    ("transpose(x, 0, 1, 2)", "transpose() takes a tensor and 2 dimensions"),
    ("transpose(x, 0, 1.5)", "a dimension of transpose() must be a whole number written in the expression"),
    ("transpose(x, 0, d)", "a dimension of transpose() must be a whole number written in the expression"),
    ("transpose(x, dim0=0, dim1=1)", "transpose() takes a tensor and 2 dimensions"),
    ("flatten(x, 1)", "flatten() takes 1 argument(s), got 2"),
    ("flatten(x, start_dim=0.5)", "flatten(start_dim=...) must be an integer"),
    ("cat(x)", "cat() takes 2 or more arguments, got 1"),
    ("cat(x, y, axis=1)", "cat() has no keyword 'axis'; allowed: dim="),
    ("sum(x, dim='0')", "sum(dim=...) must be an integer"),
    ("sum(x, keepdim=1)", "sum(keepdim=...) must be True or False"),
    ("mse(a, b, reduction='max')", "mse(reduction=...) must be one of 'mean', 'sum'"),
    ("mse(a, b, reduction='none')", "mse(reduction=...) must be one of 'mean', 'sum'"),
    ("relu(x, y)", "relu() takes 1 argument(s), got 2"),
    ("mse(a)", "mse() takes 2 argument(s), got 1"),
    ("relu", "'relu' is a function; call it, e.g. relu(x)"),
    ("linear1 * 2", "'linear1' is a module; call it, e.g. linear1(x)"),
    ("linear1(X, Y)", "module 'linear1' takes exactly one argument"),
    ("linear1(X, bias=False)", "module 'linear1' takes exactly one argument"),
    ("yield x", "syntax error in expression"),
    ("x +", "syntax error in expression 'x +'"),
    ("import os", "syntax error in expression"),
    ("x = 1", "syntax error in expression"),
    ("", "expression is empty"),
    ("   ", "expression is empty"),
]


@pytest.mark.parametrize(("text", "message"), FORBIDDEN, ids=[t or "empty" for t, _ in FORBIDDEN])
def test_forbidden_expression_is_rejected_with_a_clear_message(text, message):
    assert message in rejected(text)


def test_starred_argument_is_rejected_with_a_clear_message():
    # a '*' argument is refused; the message should say so (not "takes 1 argument(s), got 1")
    message = rejected("relu(*x)")
    assert "'*' unpacking" in message


def test_starred_is_rejected_in_every_position():
    for text in ("relu(*x)", "mse(*x, y)", "linear1(*X)", "sum(x, *y)"):
        rejected(text)


def test_constants_must_be_finite_float32_numbers():
    """1e999 is inf to Python, 1e39 overflows float32 to inf: both are bad values, like `value = inf`."""
    assert "finite" in rejected("x * 1e999") or "range" in rejected("x * 1e999")
    assert "finite" in rejected("x * 1e39") or "range" in rejected("x * 1e39")


def test_the_text_is_never_run():
    """A call that would have a visible effect if evaluated is only ever rejected."""
    marker = "__import__('pathlib').Path('/tmp/backprop_tui_parser_ran').touch()"
    rejected(marker)
    from pathlib import Path

    assert not Path("/tmp/backprop_tui_parser_ran").exists()


def test_non_string_expression():
    with pytest.raises(PresetError, match="expression must be a string"):
        parse_expression(3)  # type: ignore[arg-type]


# ---------------------------------------------------------------- limits


def test_expression_length_limit():
    text = "x" + "+x" * (limits.MAX_EXPR_CHARS // 2)
    assert len(text) > limits.MAX_EXPR_CHARS
    message = rejected(text)
    assert f"{len(text)} characters long; the limit is {limits.MAX_EXPR_CHARS}" in message
    ok = "x" + " " * (limits.MAX_EXPR_CHARS - 1)
    assert parse_expression(ok).tree == Ref("x")


def test_bracket_nesting_limit():
    depth = limits.MAX_EXPR_DEPTH + 1
    message = rejected("(" * depth + "x" + ")" * depth)
    assert f"nests brackets deeper than {limits.MAX_EXPR_DEPTH} levels" in message
    ok = limits.MAX_EXPR_DEPTH - 5
    assert parse_expression("(" * ok + "x" + ")" * ok).tree == Ref("x")


def test_bracket_nesting_counts_every_kind_of_bracket():
    message = rejected("[" * 30 + "(" * 30 + "x")
    assert "nests brackets deeper" in message


@pytest.fixture
def python_parser_calls(monkeypatch):
    """Every text the parser hands to Python's own parser (`ast.parse`) while the test runs."""
    from backprop_tui.engine import expr

    texts: list[str] = []
    real = expr.ast.parse

    def counting(text, *args, **kwargs):
        texts.append(text)
        return real(text, *args, **kwargs)

    monkeypatch.setattr(expr.ast, "parse", counting)
    return texts


@pytest.mark.parametrize("n", [999, 10_000])
def test_deeply_nested_parentheses_fail_fast(n, python_parser_calls):
    """Refused by a single scan of the text, before Python's recursive parser sees it."""
    message = rejected("(" * n + "x" + ")" * n)
    assert "limit" in message or "nests" in message
    assert python_parser_calls == []


def test_unbalanced_deep_brackets_fail_fast(python_parser_calls):
    rejected("(" * 1500)
    assert python_parser_calls == []  # too deep: refused by the scan
    rejected(")" * 1500 + "x")  # never deeper than 0: Python's parser refuses the first ')'
    assert python_parser_calls == [")" * 1500 + "x"]


def test_tree_depth_limit():
    long_sum = "x" + " + x" * (limits.MAX_EXPR_DEPTH + 5)
    assert f"nests deeper than {limits.MAX_EXPR_DEPTH} operations; split it into steps" in rejected(long_sum)
    assert "nests deeper than" in rejected("-" * 900 + "x")
    assert "nests deeper than" in rejected("relu(" * 38 + "x" + ")" * 38 + " + 1" * 10)


def test_many_steps_limit():
    steps = "".join(f'[[steps]]\nname = "s{i}"\nexpr = "x + 1"\n' for i in range(limits.MAX_STEPS + 1))
    text = f'output = "s0"\n[tensors.x]\nrole = "input"\nvalue = 1.0\n{steps}'
    with pytest.raises(PresetError, match=f"{limits.MAX_STEPS + 1} steps; the limit is {limits.MAX_STEPS}"):
        parse_preset(text, source="many.toml")


def test_many_tensors_limit():
    tensors = "".join(f'[tensors.t{i}]\nrole = "input"\nvalue = 1.0\n' for i in range(limits.MAX_LEAVES + 1))
    text = f'output = "s"\n{tensors}[[steps]]\nname = "s"\nexpr = "t0"\n'
    with pytest.raises(PresetError, match=f"too many tensors and modules; the limit is {limits.MAX_LEAVES}"):
        parse_preset(text, source="wide.toml")


def tensor_preset(tensors: str, expr: str = "sum(a)") -> str:
    return f'output = "J"\n{tensors}\n[[steps]]\nname = "J"\nexpr = "{expr}"\n'


def test_elements_per_tensor_limit():
    rows = limits.MAX_ELEMENTS_PER_TENSOR // 1000 + 1
    text = tensor_preset(f'[tensors.a]\nrole = "input"\nshape = [{rows}, 1000]\ninit = "zeros"')
    message = f"[tensors.a]: {rows * 1000:,} elements; the limit per tensor is {limits.MAX_ELEMENTS_PER_TENSOR:,}"
    with pytest.raises(PresetError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_preset(text, source="big.toml")


def test_elements_per_module_limit():
    text = (
        'output = "J"\n[tensors.X]\nrole = "input"\nvalue = [[1.0]]\n'
        "[modules.huge]\ntype = \"Linear\"\nin_features = 1000\nout_features = 1001\n"
        '[[steps]]\nname = "J"\nexpr = "sum(X)"\n'
    )
    with pytest.raises(PresetError, match=r"\[modules.huge\]: .*the limit per tensor is"):
        parse_preset(text, source="huge.toml")


def test_total_elements_limit():
    n = limits.MAX_ELEMENTS_TOTAL // limits.MAX_ELEMENTS_PER_TENSOR + 1
    side = int(limits.MAX_ELEMENTS_PER_TENSOR**0.5)
    tensors = "".join(f'[tensors.a{i}]\nrole = "input"\nshape = [{side}, {side}]\ninit = "zeros"\n' for i in range(n))
    with pytest.raises(PresetError, match=f"more than {limits.MAX_ELEMENTS_TOTAL:,} elements in all tensors together"):
        parse_preset(tensor_preset(tensors, "sum(a0)"), source="total.toml")


def test_explicit_linear_weight_and_bias_count_once():
    """3,000,000 elements in leaves and a Linear layer of 500,500 explicit values: 3,500,500
    in all, within the 4,000,000 limit (counted twice, they were refused as more)."""
    tensors = "".join(f'[tensors.a{i}]\nrole = "input"\nshape = [1000, 1000]\ninit = "zeros"\n' for i in range(3))
    row = "[" + ", ".join(["0"] * 1000) + "]"
    module = (
        '[modules.layer]\ntype = "Linear"\nin_features = 1000\nout_features = 500\n'
        f"weight = [{', '.join([row] * 500)}]\nbias = [{', '.join(['1'] * 500)}]\n"
    )
    preset = parse_preset(tensor_preset(tensors + module, "sum(layer(a0)) + sum(a1) + sum(a2)"), source="linear.toml")
    assert sum(leaf.initial.size for leaf in preset.leaves) == 3_500_500
    assert preset.leaf("layer.bias").initial.tolist() == [1.0] * 500
    over = tensors + '[tensors.a3]\nrole = "input"\nshape = [500, 1000]\ninit = "zeros"\n' + module
    with pytest.raises(PresetError, match=r"\[modules.layer\]: more than 4,000,000 elements in all tensors together"):
        parse_preset(tensor_preset(over, "sum(layer(a0))"), source="over.toml")


def test_step_result_size_limit_is_checked_without_computing(monkeypatch):
    tensors = (
        '[tensors.a]\nrole = "input"\nshape = [2000, 1]\ninit = "ones"\n'
        '[tensors.b]\nrole = "input"\nshape = [1, 1000]\ninit = "ones"'
    )
    text = (
        f'output = "J"\n{tensors}\n[[steps]]\nname = "outer"\nexpr = "a @ b"\n'
        '[[steps]]\nname = "J"\nexpr = "sum(outer)"\n'
    )
    from backprop_tui.engine import ops

    def never(a, b):
        raise AssertionError("the product was computed")

    monkeypatch.setitem(ops._BINARY, "@", never)  # refused from the shapes, before torch runs '@'
    with pytest.raises(
        PresetError,
        match=r"step 'outer' \(steps\[0\]\): an operation makes too large a tensor: "
        r"shape \[2000, 1000\] \(2,000,000 elements\)",
    ):
        parse_preset(text, source="outer.toml")


def test_total_step_elements_limit():
    tensors = '[tensors.a]\nrole = "input"\nshape = [1000, 1000]\ninit = "ones"'
    steps = "".join(
        f'[[steps]]\nname = "s{i}"\nexpr = "a * {i}"\n' for i in range(limits.MAX_ELEMENTS_TOTAL // 1_000_000 + 1)
    )
    text = f'output = "s0"\n{tensors}\n{steps}'
    with pytest.raises(PresetError, match=f"steps hold more than {limits.MAX_ELEMENTS_TOTAL:,} elements in all"):
        parse_preset(text, source="steps.toml")


def test_file_size_limit(tmp_path):
    path = tmp_path / "padded.toml"
    body = tensor_preset('[tensors.a]\nrole = "input"\nvalue = 1.0')
    path.write_text(body + "#" * (limits.MAX_FILE_BYTES + 1) + "\n")
    size = path.stat().st_size
    with pytest.raises(
        PresetError, match=f"padded.toml: file is {size:,} bytes; the limit is {limits.MAX_FILE_BYTES:,}"
    ):
        load_preset(path)
    with pytest.raises(PresetError, match="longer than"):
        parse_preset(path.read_text(), source=str(path))


def test_deeply_nested_toml_value_is_refused():
    text = tensor_preset('[tensors.a]\nrole = "input"\nvalue = ' + "[" * 5000 + "1.0" + "]" * 5000)
    with pytest.raises(PresetError, match="deep.toml: "):
        parse_preset(text, source="deep.toml")


def test_deeply_nested_expression_in_a_preset_names_the_step():
    expr = "(" * 10_000 + "a" + ")" * 10_000
    text = tensor_preset('[tensors.a]\nrole = "input"\nvalue = 1.0', expr)
    with pytest.raises(PresetError, match=r"nest.toml: step 'J' \(steps\[0\]\): expression is 20001 characters long"):
        parse_preset(text, source="nest.toml")


# ---------------------------------------------------------------- what is accepted


def test_transpose_matmul_and_unary_minus():
    assert parse_expression("W.T").tree == Transpose(Ref("W"))
    assert parse_expression("X @ W.T").tree == BinOp("@", Ref("X"), Transpose(Ref("W")))
    assert parse_expression("-x").tree == Neg(Ref("x"))
    assert parse_expression("-3").tree == Num(-3.0)
    assert parse_expression("+x").tree == Ref("x")
    assert parse_expression("-(x + 1)").tree == Neg(BinOp("+", Ref("x"), Num(1.0)))
    assert parse_expression("  x  ").text == "x"


def test_operators_and_precedence():
    tree = parse_expression("d**2 / 2 - a * b + c @ e").tree
    assert tree == BinOp(
        "+",
        BinOp("-", BinOp("/", BinOp("**", Ref("d"), Num(2.0)), Num(2.0)), BinOp("*", Ref("a"), Ref("b"))),
        BinOp("@", Ref("c"), Ref("e")),
    )
    assert parse_expression("1.5e-3 * x").tree == BinOp("*", Num(0.0015), Ref("x"))


def test_names_are_listed_once_in_order_of_first_use():
    parsed = parse_expression("x * y + x + linear1(z)", MODULES)
    assert parsed.names == ("x", "y", "z")
    assert parsed.modules == ("linear1",)
    assert parsed.reads == ("x", "y", "z", "linear1")


def test_module_call():
    assert parse_expression("relu(linear1(X))", MODULES).tree == Call("relu", (ModuleCall("linear1", Ref("X")),))


ACCEPTED_CALLS = [
    ("relu(z)", Call("relu", (Ref("z"),))),
    ("sigmoid(z)", Call("sigmoid", (Ref("z"),))),
    ("tanh(z)", Call("tanh", (Ref("z"),))),
    ("exp(z)", Call("exp", (Ref("z"),))),
    ("log(z)", Call("log", (Ref("z"),))),
    ("sqrt(z)", Call("sqrt", (Ref("z"),))),
    ("abs(z)", Call("abs", (Ref("z"),))),
    ("sum(z)", Call("sum", (Ref("z"),))),
    ("sum(z, dim=0)", Call("sum", (Ref("z"),), (("dim", 0),))),
    ("sum(z, dim=-1, keepdim=True)", Call("sum", (Ref("z"),), (("dim", -1), ("keepdim", True)))),
    ("mean(z)", Call("mean", (Ref("z"),))),
    ("mean(z, dim=1, keepdim=False)", Call("mean", (Ref("z"),), (("dim", 1), ("keepdim", False)))),
    ("softmax(z)", Call("softmax", (Ref("z"),))),
    ("softmax(z, dim=0)", Call("softmax", (Ref("z"),), (("dim", 0),))),
    ("log_softmax(z, dim=1)", Call("log_softmax", (Ref("z"),), (("dim", 1),))),
    ("mse(p, t)", Call("mse", (Ref("p"), Ref("t")))),
    ("mse(p, t, reduction='sum')", Call("mse", (Ref("p"), Ref("t")), (("reduction", "sum"),))),
    ("bce(p, t, reduction=\"mean\")", Call("bce", (Ref("p"), Ref("t")), (("reduction", "mean"),))),
    ("bce_with_logits(z, t)", Call("bce_with_logits", (Ref("z"), Ref("t")))),
    ("cross_entropy(z, c, reduction='sum')", Call("cross_entropy", (Ref("z"), Ref("c")), (("reduction", "sum"),))),
    ("max(z, dim=1, keepdim=True)", Call("max", (Ref("z"),), (("dim", 1), ("keepdim", True)))),
    ("min(z)", Call("min", (Ref("z"),))),
    ("argmax(z, dim=1)", Call("argmax", (Ref("z"),), (("dim", 1),))),
    ("max_pool2d(z, kernel_size=2)", Call("max_pool2d", (Ref("z"),), (("kernel_size", 2),))),
    (
        "avg_pool2d(z, kernel_size=3, stride=1, padding=1)",
        Call("avg_pool2d", (Ref("z"),), (("kernel_size", 3), ("stride", 1), ("padding", 1))),
    ),
    (
        "var(z, dim=0, keepdim=True, correction=1)",
        Call("var", (Ref("z"),), (("dim", 0), ("keepdim", True), ("correction", 1))),
    ),
    ("std(z, correction=0)", Call("std", (Ref("z"),), (("correction", 0),))),
    ("one_hot(Yb, 27)", Call("one_hot", (Ref("Yb"),), (("shape", (27,)),))),
    ("reshape(z, 32, -1)", Call("reshape", (Ref("z"),), (("shape", (32, -1)),))),
    ("view(z, 2, 3)", Call("view", (Ref("z"),), (("shape", (2, 3)),))),
    ("gelu(z)", Call("gelu", (Ref("z"),))),
    ("gelu(z, approximate='tanh')", Call("gelu", (Ref("z"),), (("approximate", "tanh"),))),
    ("leaky_relu(z)", Call("leaky_relu", (Ref("z"),))),
    ("leaky_relu(z, negative_slope=0.2)", Call("leaky_relu", (Ref("z"),), (("negative_slope", 0.2),))),
    ("leaky_relu(z, negative_slope=-1.0)", Call("leaky_relu", (Ref("z"),), (("negative_slope", -1.0),))),
    ("cat(a, b)", Call("cat", (Ref("a"), Ref("b")))),
    ("cat(a, b, c, dim=-1)", Call("cat", (Ref("a"), Ref("b"), Ref("c")), (("dim", -1),))),
    ("transpose(z, 0, 1)", Call("transpose", (Ref("z"),), (("dims", (0, 1)),))),
    ("transpose(z, -1, 2)", Call("transpose", (Ref("z"),), (("dims", (-1, 2)),))),
    ("flatten(z)", Call("flatten", (Ref("z"),))),
    ("flatten(z, start_dim=1, end_dim=-2)", Call("flatten", (Ref("z"),), (("start_dim", 1), ("end_dim", -2)))),
]

INDEXED = [
    ("C[Xb]", Call(INDEX, (Ref("C"), Ref("Xb")), (("items", (("tensor", 1),)),))),
    ("p[range(32), Yb]", Call(INDEX, (Ref("p"), Ref("Yb")), (("items", (("range", 32), ("tensor", 1))),))),
    ("x[:, 0]", Call(INDEX, (Ref("x"),), (("items", (("slice", None, None, None), ("int", 0))),))),
    ("x[1:3]", Call(INDEX, (Ref("x"),), (("items", (("slice", 1, 3, None),)),))),
    ("x[-1, ::2]", Call(INDEX, (Ref("x"),), (("items", (("int", -1), ("slice", None, None, 2))),))),
]


@pytest.mark.parametrize(("text", "tree"), INDEXED, ids=[t for t, _ in INDEXED])
def test_indexing_in_pytorchs_notation(text, tree):
    parsed = parse_expression(text)
    assert parsed.tree == tree
    assert unparse(parsed.tree) == text


@pytest.mark.parametrize(("text", "tree"), ACCEPTED_CALLS, ids=[t for t, _ in ACCEPTED_CALLS])
def test_allowed_function_call(text, tree):
    assert parse_expression(text).tree == tree
    assert parse_expression(unparse(tree)).tree == tree  # what is shown reads back as the same call


def test_every_documented_function_is_tested():
    assert {tree.func for _, tree in ACCEPTED_CALLS} == set(FUNCTIONS)


# ---------------------------------------------------------------- the import rule


def test_engine_does_not_import_textual():
    code = textwrap.dedent(
        """
        import sys
        import backprop_tui.engine
        from backprop_tui.engine import Session, bundled_presets, load_preset
        Session(load_preset(bundled_presets()["simple_nn"]))
        import backprop_tui.cli
        leaked = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
        assert not leaked, leaked
        assert "torch" in sys.modules
        print("clean")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"


def test_expressions_are_ascii_without_comments_or_control_characters():
    """Python's parser folds look-alikes (NFKC): `ℯxp(ｗ)` would be `exp(w)`, so anything
    non-ASCII is refused before it parses; '#' starts a comment, which would be shown raw."""
    assert rejected("ℯxp(ｗ)") == (
        "the character U+212F at column 1 is not ASCII; names, numbers and operators in an expression are ASCII only"
    )
    assert "U+FF57 at column 8" in rejected("exp(x)*ｗ")
    assert rejected("x + 1  # \x1b]0;pwned\x07") == (
        "'#' at column 8 starts a comment; comments are not allowed in an expression"
    )
    assert rejected("x +\x1b[2J 1") == "the control character U+001B at column 4 is not allowed in an expression"
    # line breaks (a TOML multi-line string) are spaces: the text is one line wherever it is shown
    parsed = parse_expression("w *\n  x\t+ 1")
    assert parsed.text == "w *   x + 1" and unparse(parsed.tree) == "((w * x) + 1)"


def test_preset_name_is_an_identifier():
    for bad in ("../../x/innocent", "a b", "_hidden", "nämlich", ""):
        with pytest.raises(PresetError) as caught:
            text = f'name = "{bad}"\n' + tensor_preset('[tensors.a]\nrole = "input"\nvalue = 1.0')
            parse_preset(text, source="n.toml")
        assert str(caught.value).startswith(f"n.toml: name: {bad!r} is not a valid name")
    assert parse_preset('name = "ok_1"\n' + tensor_preset('[tensors.a]\nrole = "input"\nvalue = 1.0')).name == "ok_1"


def test_a_value_typed_near_float32s_max_saves_and_loads_back():
    """The editor takes up to float32's maximum (3.4028234663852886e38); a preset holding a value
    typed there loads again (it refused anything past 3.4e38)."""
    from backprop_tui.engine import Session
    from backprop_tui.engine.numbers import parse_number
    from backprop_tui.engine.save import preset_toml

    session = Session(parse_preset(tensor_preset('[tensors.a]\nrole = "parameter"\nvalue = [1.0, 2.0]')))
    session.set_element("a", (0,), parse_number("3.40282e38"))
    again = parse_preset(preset_toml(session))
    assert again.leaf("a").initial.tolist() == [np.float32(3.40282e38), 2.0]


def test_values_that_float32_stores_as_zero_are_reported():
    from backprop_tui.engine import EditError
    from backprop_tui.engine.numbers import parse_number

    with pytest.raises(EditError, match="1e-50 is too small for float32 and would be stored as 0"):
        parse_number("1e-50")
    assert parse_number("1e-45") == 1e-45  # a subnormal float32 holds it
    with pytest.raises(PresetError, match=r"'value' holds 1e-50, which float32 stores as 0"):
        parse_preset(tensor_preset('[tensors.a]\nrole = "input"\nvalue = [1.0, 1e-50]'))
    assert "constant 1e-50 is so small that float32 stores it as 0" in rejected("x * 1e-50")


def test_a_typed_expression_keeps_minus_zero():
    """x / -0.0 is -inf, as in a file: splitting the typed text into steps keeps the sign."""
    from backprop_tui.engine import Session
    from backprop_tui.engine.analysis.custom import custom_preset

    for text in ("x / -0.0", "x * 2 / -0.0"):
        session = Session(custom_preset(text, {"x": 1.0}))
        assert session.snapshot.node(session.snapshot.output).value == -np.inf
