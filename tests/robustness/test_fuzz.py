"""Fuzzing: the expression parser, the preset loader and Session.set_element.

The property everywhere: the only exception that escapes is the project's own
(BackpropError: PresetError from parsing and loading, EditError from edits), and a
refused edit changes nothing. The fuzzers found engine bugs ('@' between two numbers,
ints past int64 or float32 into set_element); until 1515e9a fixed them their inputs were
left out here with `assume`. Now every generated input is tried, and counted.
"""

from __future__ import annotations

import ast
import math
import tempfile
from pathlib import Path

import hypothesis.strategies as st
import tomli_w
import torch
from hypothesis import HealthCheck, assume, given, settings

from backprop_tui.engine import (
    BackpropError,
    EditError,
    PresetError,
    Session,
    bundled_presets,
    load_preset,
    parse_preset,
)
from backprop_tui.engine.expr import FUNCTIONS, parse_expression
from backprop_tui.engine.numbers import FLOAT32_MAX
from robustness_support import FRAGILE_PRESET, bundled, preset_from, state_of, unchanged

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------- expression text

EXPR_ALPHABET = "xvMcTlayer()[]{}+-*/@%.,:=!<>&|^~_ 0123456789eE'\"f\\\n\tλ１"
MODULES = frozenset({"layer"})


def _parse_or_refuse(text: str):
    """Parsed, or refused with PresetError; anything else propagates and fails the test."""
    try:
        return parse_expression(text, MODULES)
    except PresetError:
        return None


@FUZZ
@given(st.one_of(st.text(max_size=200), st.text(EXPR_ALPHABET, max_size=200)))
def _random_strings(count, text):
    count.tried += 1
    _parse_or_refuse(text)
    count.held += 1


def test_parser_random_strings(tally):
    """Random text (any Unicode, and text made of expression characters) into parse_expression."""
    _random_strings(tally)


# ---------------------------------------------------------------- random ASTs

NAMES = ["x", "v", "M", "c", "layer", "J", "__import__", "_x", "open", "eval", "T", "foo", *FUNCTIONS]
ATTRS = ["T", "data", "__class__", "sum", "grad"]
ALL_BINOPS = [ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.MatMult, ast.Mod, ast.FloorDiv,
              ast.LShift, ast.RShift, ast.BitOr, ast.BitAnd, ast.BitXor]
ALLOWED_BINOPS = ALL_BINOPS[:6]
UNARY = [ast.USub, ast.UAdd, ast.Not, ast.Invert]
KEYWORDS = ["dim", "keepdim", "reduction", "axis", None]

constants = st.one_of(
    st.integers(),
    st.integers(10**300, 10**2000),
    st.floats(),
    st.text(max_size=5),
    st.binary(max_size=3),
    st.sampled_from([True, False, None, Ellipsis, 1j]),
)
names = st.one_of(st.sampled_from(NAMES), st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True))


def _any_node(children):
    exprs = st.lists(children, max_size=3)
    name = names.map(lambda n: ast.Name(n, ast.Load()))
    return st.one_of(
        st.builds(ast.BinOp, children, st.sampled_from(ALL_BINOPS).map(lambda op: op()), children),
        st.builds(ast.UnaryOp, st.sampled_from(UNARY).map(lambda op: op()), children),
        st.builds(ast.Call, st.one_of(name, children), exprs,
                  st.lists(st.builds(ast.keyword, st.sampled_from(KEYWORDS), children), max_size=2)),
        st.builds(ast.Attribute, children, st.sampled_from(ATTRS), st.just(ast.Load())),
        st.builds(ast.Subscript, children, children, st.just(ast.Load())),
        st.builds(ast.Compare, children, st.just([ast.Lt()]), exprs.filter(bool).map(lambda e: e[:1])),
        st.builds(ast.BoolOp, st.just(ast.And()), st.lists(children, min_size=2, max_size=2)),
        st.builds(ast.IfExp, children, children, children),
        st.builds(ast.Lambda, st.just(ast.arguments([], [], None, [], [], None, [])), children),
        st.builds(ast.List, exprs, st.just(ast.Load())),
        st.builds(ast.Tuple, exprs, st.just(ast.Load())),
        st.builds(ast.Set, exprs.filter(bool)),
        st.builds(ast.Dict, st.lists(children, min_size=1, max_size=1), st.lists(children, min_size=1, max_size=1)),
        st.builds(ast.ListComp, children,
                  st.builds(lambda it: [ast.comprehension(ast.Name("i", ast.Store()), it, [], 0)], children)),
        st.builds(ast.GeneratorExp, children,
                  st.builds(lambda it: [ast.comprehension(ast.Name("i", ast.Store()), it, [], 0)], children)),
        st.builds(lambda v: ast.JoinedStr([ast.FormattedValue(v, -1, None)]), children),
        st.builds(ast.NamedExpr, name.map(lambda n: ast.Name(n.id, ast.Store())), children),
        st.builds(ast.Starred, children, st.just(ast.Load())),
    )


def _allowed_node(children):
    """Only the forms the language allows, so generated trees reach shape checks and torch."""
    tensor = st.sampled_from(["x", "v", "M", "c"]).map(lambda n: ast.Name(n, ast.Load()))
    func = st.sampled_from(sorted(FUNCTIONS))
    return st.one_of(
        st.builds(ast.BinOp, children, st.sampled_from(ALLOWED_BINOPS).map(lambda op: op()), children),
        st.builds(ast.UnaryOp, st.just(ast.USub()), children),
        st.builds(ast.Attribute, children, st.just("T"), st.just(ast.Load())),
        st.builds(lambda f, args, kws: ast.Call(ast.Name(f, ast.Load()), args, kws), func,
                  st.lists(children, min_size=1, max_size=2),
                  st.lists(st.builds(ast.keyword, st.sampled_from(["dim", "keepdim", "reduction"]),
                                     st.sampled_from([0, 1, -1, 2, True, "mean", "sum"]).map(ast.Constant)),
                           max_size=1)),
        st.builds(lambda a: ast.Call(ast.Name("layer", ast.Load()), [a], []), children),
        tensor,
    )


leaf_nodes = st.one_of(names.map(lambda n: ast.Name(n, ast.Load())), constants.map(ast.Constant))
allowed_leaves = st.one_of(
    st.sampled_from(["x", "v", "M", "c"]).map(lambda n: ast.Name(n, ast.Load())),
    st.floats(-10, 10).map(ast.Constant),
    st.integers(0, 4).map(ast.Constant),
)
any_tree = st.recursive(leaf_nodes, _any_node, max_leaves=12)
allowed_tree = st.recursive(allowed_leaves, _allowed_node, max_leaves=10)


def _unparse(node: ast.AST) -> str | None:
    try:
        return ast.unparse(ast.fix_missing_locations(node))
    except Exception:  # a tree ast itself cannot write out is not a test input
        return None


# x scalar, v [3], M [2, 3], c int [2], layer: Linear(3 -> 2)
AST_PRESET = """
name = "fuzz"
output = "J"
[tensors.x]
role = "parameter"
value = 0.5
[tensors.v]
role = "parameter"
value = [1.0, -2.0, 0.25]
[tensors.M]
role = "input"
value = [[1.0, 2.0, 3.0], [-1.0, 0.0, 4.0]]
[tensors.c]
role = "target"
dtype = "int"
value = [0, 2]
[modules.layer]
type = "Linear"
in_features = 3
out_features = 2
seed = 1
[[steps]]
name = "E"
expr = {expr}
[[steps]]
name = "J"
expr = "sum(E)"
"""


def _load_and_compute(expr_text: str) -> None:
    """Expression -> preset -> Session (shape check on meta, then real forward and backward)."""
    try:
        preset = parse_preset(AST_PRESET.replace("{expr}", tomli_w.dumps({"e": expr_text})[4:].strip()))
        Session(preset)
    except BackpropError:
        pass


@FUZZ
@given(any_tree.map(_unparse).filter(lambda t: t is not None))
def _random_asts(count, text):
    count.tried += 1
    _load_and_compute(text)
    count.held += 1


def test_parser_random_asts(tally):
    """Random Python expression trees of every kind, written out by ast.unparse."""
    _random_asts(tally)


@FUZZ
@given(allowed_tree.map(_unparse).filter(lambda t: t is not None))
def _random_allowed_asts(count, text):
    assume(_parse_or_refuse(text) is not None)
    count.tried += 1
    _load_and_compute(text)
    count.held += 1


def test_allowed_asts_through_torch(tally):
    """Random trees of the allowed forms: loaded (meta-device shape check) and computed by torch."""
    _random_allowed_asts(tally)


# ---------------------------------------------------------------- random TOML documents

toml_scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),
    st.text(max_size=12),
    st.dates(),
    st.datetimes(),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
small_numbers = st.one_of(st.floats(-5, 5), st.integers(-3, 3))
tensor_value = st.one_of(
    small_numbers,
    st.lists(small_numbers, min_size=1, max_size=4),
    st.integers(1, 3).flatmap(
        lambda n: st.lists(st.lists(small_numbers, min_size=n, max_size=n), min_size=1, max_size=3)
    ),
)


roles = st.sampled_from(["input", "target", "parameter"])
shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3)
tensor_tables = st.one_of(
    st.fixed_dictionaries({"role": roles, "value": tensor_value},
                          optional={"requires_grad": st.booleans(), "note": st.text(max_size=5)}),
    st.fixed_dictionaries({"role": roles, "shape": shapes, "init": st.sampled_from(["zeros", "ones", "randn", "rand"])},
                          optional={"seed": st.integers(0, 10), "requires_grad": st.booleans()}),
    st.fixed_dictionaries({"role": st.just("target"), "dtype": st.just("int"), "init": st.just("randint"),
                           "shape": st.lists(st.integers(1, 4), min_size=1, max_size=2), "high": st.integers(1, 5)}),
)
tensor_sets = st.fixed_dictionaries(
    {"x": tensor_tables, "w": tensor_tables}, optional={n: tensor_tables for n in "ybXc"}
)
module_tables = st.fixed_dictionaries(
    {"type": st.just("Linear"), "in_features": st.integers(1, 3), "out_features": st.integers(1, 3)},
    optional={"bias": st.booleans(), "seed": st.integers(0, 5)},
)
step_exprs = st.one_of(
    st.sampled_from(["x + w", "sum(x * w)", "mean((w - y) ** 2)", "lin(X)", "relu(b)", "w @ x", "x.T @ w",
                     "mse(w, y)", "bce(sigmoid(w), y)", "cross_entropy(X, c)", "softmax(w, dim=0)", "log(w)",
                     "sum(s)", "s * 2", "exp(s) / s", "mean(lin(X))", "sum(t)", "x", "lin(x) * w"]),
    allowed_tree.map(_unparse).filter(lambda t: t is not None),
)
step_tables = st.fixed_dictionaries({"name": st.sampled_from(["s", "t"]), "expr": step_exprs})


def _with_cost(steps: list[dict]) -> st.SearchStrategy:
    """The steps, then J = sum or mean of one of the names defined (or, rarely, of none)."""
    names = [step["name"] for step in steps] + ["x", "w"]
    exprs = st.one_of(st.sampled_from(names).flatmap(lambda n: st.sampled_from([f"sum({n})", f"mean({n})"])),
                      st.just("mean(s * t)"))
    return exprs.map(lambda e: steps + [{"name": "J", "expr": e}])


plausible_docs = st.fixed_dictionaries(
    {"output": st.just("J"), "tensors": tensor_sets,
     "steps": st.lists(step_tables, max_size=3, unique_by=lambda step: step["name"]).flatmap(_with_cost)},
    optional={"name": st.text(max_size=10), "learning_rate": st.floats(0.001, 1),
              "modules": st.fixed_dictionaries({"lin": module_tables})},
)
# A mutation: (which place, new value, delete it instead); the root gets an unknown key.
mutations = st.lists(st.tuples(st.integers(0, 10**6), toml_values, st.booleans()), max_size=3)


def _places(doc, path=()):
    yield path
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        yield from _places(value, (*path, key))


def _mutated(doc, changes):
    for which, value, delete in changes:
        places = list(_places(doc))
        path = places[which % len(places)]
        if not path:
            doc = {**doc, "junk": value}
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if delete and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    return doc


preset_docs = st.tuples(plausible_docs, mutations).map(lambda t: _mutated(t[0], t[1]))


@FUZZ
@given(preset_docs)
def _random_toml(count, doc):
    try:
        text = tomli_w.dumps(doc)
    except (TypeError, ValueError):  # tomli_w cannot write it: not a test input
        assume(False)
    count.tried += 1
    try:
        Session(parse_preset(text))
    except BackpropError:
        pass
    count.held += 1


def test_loader_random_toml_documents(tally):
    """Random TOML documents (tomli_w from random, mostly preset-shaped dicts) loaded and computed."""
    _random_toml(tally)


# ---------------------------------------------------------------- random bytes

CORPUS_DIR = Path(tempfile.mkdtemp(prefix="backprop-fuzz-"))
BUNDLED_BYTES = [p.read_bytes() for p in bundled_presets().values() if p.stat().st_size < 5000]


def _load_bytes(data: bytes) -> None:
    path = CORPUS_DIR / "fuzz.toml"
    path.write_bytes(data)
    try:
        load_preset(path)
    except PresetError:
        pass


@FUZZ
@given(st.binary(max_size=600))
def _random_bytes(count, data):
    count.tried += 1
    _load_bytes(data)
    count.held += 1


def test_loader_random_bytes(tally):
    """Random byte strings written to a file and loaded."""
    _random_bytes(tally)


@FUZZ
@given(
    st.sampled_from(BUNDLED_BYTES),
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255), st.sampled_from(["set", "insert", "delete"])),
             min_size=1, max_size=6),
)
def _mutated_presets(count, original, mutations):
    count.tried += 1
    data = bytearray(original)
    for where, byte, how in mutations:
        i = min(int(where * len(data)), max(len(data) - 1, 0))
        if how == "insert":
            data.insert(i, byte)
        elif data and how == "delete":
            del data[i]
        elif data:
            data[i] = byte
    _load_bytes(bytes(data))
    count.held += 1


def test_loader_mutated_bundled_presets(tally):
    """The bundled presets with random bytes set, inserted or deleted, loaded."""
    _mutated_presets(tally)


# ---------------------------------------------------------------- Session.set_element

EDIT_PRESETS = {
    "scalar_chain": lambda: bundled("scalar_chain"),
    "simple_nn": lambda: bundled("simple_nn"),
    "softmax_classifier": lambda: bundled("softmax_classifier"),
    "fragile": lambda: preset_from(FRAGILE_PRESET),
}
edit_values = st.one_of(
    st.floats(),
    st.floats(-10, 10),
    st.integers(-5, 5),
    st.integers(-(2**80), 2**80),
    st.sampled_from([0.0, -0.0, 1.5, -100, 7, FLOAT32_MAX, 3.4e38, 3.5e38, 1e-45, math.nan, math.inf,
                     2**62, 2**63, -(2**63), 1e30, 10**39, 10**400]),
)


@settings(max_examples=250, deadline=None)
@given(
    st.sampled_from(sorted(EDIT_PRESETS)),
    st.data(),
    edit_values,
)
def _set_element(count, preset_name, data, value):
    session = Session(EDIT_PRESETS[preset_name]())
    leaves = sorted(session.values)
    name = data.draw(st.one_of(st.sampled_from(leaves), st.text(max_size=6)), label="name")
    tensor = session.values.get(name)
    if tensor is not None:
        dims = st.one_of(st.integers(-1, 4), st.integers(-(2**70), 2**70))
        index = data.draw(st.one_of(
            st.tuples(*[st.integers(0, size - 1) for size in tensor.shape]),
            st.lists(dims, max_size=3).map(tuple),
        ), label="index")
    else:
        index = data.draw(st.lists(st.integers(-2, 4), max_size=2).map(tuple), label="index")
    count.tried += 1
    before = state_of(session)
    try:
        session.set_element(name, index, value)
    except EditError:
        assert unchanged(session, before)
        count.held += 1
        return
    stored = session.values[name][index].item()
    assert stored == torch.tensor(value, dtype=tensor.dtype).item()
    assert len(session.undo_stack) == len(before.undo) + 1 and session.snapshot is not before.snapshot
    session.undo()
    assert all(torch.equal(session.values[k], v) for k, v in before.values.items())
    count.held += 1


def test_set_element_random_edits(tally):
    """Random leaf names, indices and values: accepted exactly, or refused with EditError and no change."""
    _set_element(tally)
