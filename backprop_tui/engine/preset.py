"""Preset files: TOML in, validated plain data out (no torch graph built here).

A preset is data and is never executed: expressions go through `expr.parse_expression`,
values must be numbers, and every key is checked against an allow-list.
See docs/presets.md for the format.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np

from backprop_tui.engine import import_torch, limits
from backprop_tui.engine.errors import PresetError
from backprop_tui.engine.files import FileRefused, expand, read_limited
from backprop_tui.engine.expr import FUNCTIONS, ParsedExpr, is_valid_name, parse_expression
from backprop_tui.engine.modules import KINDS, MODULE_TYPES, ModuleKind, Option, parameter_shapes
from backprop_tui.engine.numbers import FLOAT32_MAX, count_text, shown, underflows

T = TypeVar("T")

ROLES = ("input", "target", "parameter")
DTYPES = ("float", "int")
INITS = ("zeros", "ones", "randn", "rand", "randint")
DEFAULT_LEARNING_RATE = 0.1


@dataclass(frozen=True)
class LeafSpec:
    """A tensor the user can edit: an input, a target or a parameter."""

    name: str
    role: str
    initial: np.ndarray  # read-only; float32 or int64
    requires_grad: bool
    note: str = ""
    module: str | None = None  # "linear1" for "linear1.weight"

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.initial.shape)

    @property
    def dtype(self) -> str:
        return "int" if self.initial.dtype.kind == "i" else "float"


@dataclass(frozen=True)
class ModuleSpec:
    """A declared torch.nn module: its type, its options (the table's keys, defaults filled
    in, as the file writes them) and its own parameters (`weight`, `bias`, ...)."""

    name: str
    type: str
    options: tuple[tuple[str, Any], ...]
    parameters: tuple[str, ...]
    note: str = ""

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(f"{self.name}.{p}" for p in self.parameters)

    @property
    def has_bias(self) -> bool:
        return "bias" in self.parameters

    @property
    def kind(self) -> ModuleKind:
        return KINDS[self.type]

    def option(self, key: str) -> Any:
        return dict(self.options)[key]

    @property
    def in_features(self) -> int:  # Linear's
        return self.option("in_features")

    @property
    def out_features(self) -> int:  # Linear's
        return self.option("out_features")


@dataclass(frozen=True)
class StepSpec:
    name: str
    expr: ParsedExpr
    note: str = ""


@dataclass(frozen=True)
class ExerciseSpec:
    """An extra exercise: the gradient of `node` in one expression that may read only `allowed`
    (node names for values, d + a node's name for the learner's gradients)."""

    name: str
    node: str
    allowed: tuple[str, ...]
    prompt: str = ""


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    description: str
    leaves: tuple[LeafSpec, ...]
    modules: tuple[ModuleSpec, ...]
    steps: tuple[StepSpec, ...]
    output: str
    learning_rate: float = DEFAULT_LEARNING_RATE
    source: str = "<text>"
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict, compare=False)
    exercises: tuple[ExerciseSpec, ...] = ()
    # a learner's answers kept with the preset ([answers]): (node or exercise name, text)
    answers: tuple[tuple[str, str], ...] = ()

    def leaf(self, name: str) -> LeafSpec:
        for leaf in self.leaves:
            if leaf.name == name:
                return leaf
        raise KeyError(name)

    @property
    def leaf_names(self) -> tuple[str, ...]:
        return tuple(leaf.name for leaf in self.leaves)

    def derived(self, key: str, make: Callable[[], T]) -> T:
        """What `make()` gives for this preset, made once and kept on it: a cache, not a
        field (set past the frozen dataclass, so equality and repr do not change). For
        what the preset alone decides and every edit would otherwise work out again."""
        if key not in self.__dict__:
            object.__setattr__(self, key, make())
        return self.__dict__[key]


# ---------------------------------------------------------------- entry points


def load_preset(path: str | Path) -> Preset:
    """Read, parse and validate a preset file; every problem is one PresetError line."""
    path = Path(path)
    label = path.name
    try:
        data = read_limited(path, limits.MAX_FILE_BYTES)
    except FileRefused as exc:
        raise PresetError(f"{label}: {exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PresetError(f"{label}: not UTF-8 text (bad byte at offset {exc.start})") from None
    return parse_preset(text, source=str(path), default_name=path.stem)


def parse_preset(text: str, source: str = "<text>", default_name: str = "custom") -> Preset:
    label = Path(source).name if source != "<text>" else source
    if len(text.encode("utf-8", "surrogatepass")) > limits.MAX_FILE_BYTES:
        raise PresetError(f"{label}: text is longer than {limits.MAX_FILE_BYTES:,} bytes")
    if not text.strip():
        raise PresetError(f"{label}: file is empty; a preset needs [tensors], [[steps]] and output")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(f"{label}: TOML syntax error: {exc}") from None
    except ValueError:  # tomllib's int() of more than 4,300 digits
        raise PresetError(f"{label}: {_long_integer(text)}; no number in a preset is that long") from None
    except RecursionError:
        raise PresetError(f"{label}: TOML nests too deeply") from None
    try:
        return _Validator(label, source, default_name).preset(doc)
    except RecursionError:
        raise PresetError(f"{label}: nests too deeply") from None


# ---------------------------------------------------------------- validation

_TOP_KEYS = {
    "name", "title", "description", "output", "learning_rate", "tensors", "modules", "steps", "exercises", "answers",
}
_TENSOR_KEYS = {"role", "value", "shape", "init", "seed", "high", "dtype", "requires_grad", "note"}
_MODULE_KEYS = {"type", "weight", "bias", "seed", "requires_grad", "note"}  # and the type's own options
_STEP_KEYS = {"name", "expr", "note"}
_EXERCISE_KEYS = {"name", "node", "allowed", "prompt"}


class _Validator:
    def __init__(self, label: str, source: str, default_name: str):
        self.label = label
        self.source = source
        self.default_name = default_name
        self.total_elements = 0

    def fail(self, where: str, message: str) -> PresetError:
        text = f"{self.label}: {where}: {message}" if where else f"{self.label}: {message}"
        return PresetError(printable(text))

    # -- top level

    def preset(self, doc: dict[str, Any]) -> Preset:
        self._unknown_keys(doc, _TOP_KEYS, "")
        name = self._string(doc, "name", "", default=self.default_name)
        if "name" in doc and not is_valid_name(name):
            raise self.fail("name", f"{shown(name)} is not a valid name (letters, digits, '_'; no leading '_')")
        title = self._string(doc, "title", "", default=name)
        description = self._string(doc, "description", "", default="")
        output = self._string(doc, "output", "", default=None)
        lr = doc.get("learning_rate", DEFAULT_LEARNING_RATE)
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr <= FLOAT32_MAX:
            raise self.fail("", f"learning_rate must be a positive number, got {shown(lr)}")

        tensors = self._table(doc, "tensors", required=True)
        modules = self._table(doc, "modules", required=False)
        steps = doc.get("steps")
        if steps is None:
            raise self.fail("", "missing [[steps]]: a preset needs at least one step")
        if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
            raise self.fail("steps", "must be an array of tables, written [[steps]]")
        if not steps:
            raise self.fail("steps", "needs at least one step")
        if len(steps) > limits.MAX_STEPS:
            raise self.fail("steps", f"{len(steps)} steps; the limit is {limits.MAX_STEPS}")
        if len(tensors) + len(modules) > limits.MAX_LEAVES:
            raise self.fail("tensors", f"too many tensors and modules; the limit is {limits.MAX_LEAVES}")

        taken: dict[str, str] = {}
        leaves: list[LeafSpec] = []
        for tname, table in tensors.items():
            self._claim(taken, tname, f"[tensors.{tname}]")
            leaves.append(self._tensor(tname, table))
        module_specs: list[ModuleSpec] = []
        for mname, table in modules.items():
            self._claim(taken, mname, f"[modules.{mname}]")
            spec, params = self._module(mname, table)
            module_specs.append(spec)
            leaves.extend(params)

        # Shapes are checked by running each step on data-free stand-ins (shapes.py) as it
        # is read, so a file is refused at its first step past a limit.
        import_torch()
        from backprop_tui.engine.shapes import ShapeCheck

        check = ShapeCheck(leaves, module_specs, self.label)
        step_specs = self._steps(steps, taken, {m.name for m in module_specs}, check)
        if output is None:
            raise self.fail(
                "", f"missing 'output': name the step that is the cost, e.g. output = \"{step_specs[-1].name}\""
            )
        if output not in {s.name for s in step_specs}:
            kind = "a tensor, not a step" if output in tensors else "not a step"
            raise self.fail("output", f"{output!r} is {kind}; output must name a step")

        nodes = {*(leaf.name for leaf in leaves), *taken}
        exercises = self._exercises(doc.get("exercises", []), nodes, output)
        preset = Preset(
            name=name,
            title=title,
            description=description,
            leaves=tuple(leaves),
            modules=tuple(module_specs),
            steps=tuple(step_specs),
            output=output,
            learning_rate=float(lr),
            source=self.source,
            exercises=exercises,
            answers=self._answers(doc.get("answers", {}), nodes, output, exercises),
        )
        shapes = check.shapes()
        preset.derived("pass_cost", check.pass_cost)  # what the analyses weigh their passes by
        out_shape = shapes[output]
        if math.prod(out_shape) != 1:
            raise self.fail(
                f"output {output!r}",
                f"must be a scalar cost, but has shape {list(out_shape)}; wrap it in mean() or sum()",
            )
        preset.shapes.update(shapes)
        return preset

    def _claim(self, taken: dict[str, str], name: str, where: str) -> None:
        if not is_valid_name(name):
            raise self.fail(where, f"{name!r} is not a valid name (letters, digits, '_'; no leading '_')")
        if name in FUNCTIONS:
            raise self.fail(where, f"{name!r} is the name of a function; choose another name")
        if name in taken:
            raise self.fail(where, f"duplicate name {name!r} (already used by {taken[name]})")
        taken[name] = where

    def _unknown_keys(self, table: dict, allowed: set[str], where: str) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise self.fail(where, f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")

    def _string(self, table: dict, key: str, where: str, default: Any) -> Any:
        value = table.get(key, default)
        if value is not default and not isinstance(value, str):
            raise self.fail(where, f"'{key}' must be a string, got {_type_name(value)}")
        if isinstance(value, str):
            # Text reaches the terminal: no escape sequences, no bidi overrides.
            allowed = "\n\t" if key in ("description", "note", "prompt") else ""
            bad = next((ch for ch in value if not ch.isprintable() and ch not in allowed), None)
            if bad is not None:
                raise self.fail(
                    where, f"'{key}' holds the control character U+{ord(bad):04X}; only printable text is allowed"
                )
        return value

    def _table(self, doc: dict, key: str, required: bool) -> dict:
        value = doc.get(key)
        if value is None:
            if required:
                raise self.fail("", f"missing [{key}] table")
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table, written [{key}.NAME]")
        for name, sub in value.items():
            if not isinstance(sub, dict):
                raise self.fail(f"[{key}.{name}]", f"must be a table, got {_type_name(sub)}")
        return value

    # -- tensors

    def _tensor(self, name: str, table: dict) -> LeafSpec:
        where = f"[tensors.{name}]"
        self._unknown_keys(table, _TENSOR_KEYS, where)
        role = table.get("role")
        if role is None:
            raise self.fail(where, f"missing 'role': one of {', '.join(ROLES)}")
        if role not in ROLES:
            raise self.fail(where, f"role must be one of {', '.join(ROLES)}, got {shown(role)}")
        dtype = table.get("dtype", "float")
        if dtype not in DTYPES:
            raise self.fail(where, f"dtype must be 'float' or 'int', got {shown(dtype)}")
        default_rg = role == "parameter" and dtype == "float"
        requires_grad = table.get("requires_grad", default_rg)
        if not isinstance(requires_grad, bool):
            raise self.fail(where, "requires_grad must be true or false")
        if requires_grad and dtype == "int":
            raise self.fail(where, "an int tensor cannot require grad")
        note = self._string(table, "note", where, default="")
        if "value" in table:
            for key in ("shape", "init", "seed", "high"):
                if key in table:
                    raise self.fail(where, f"give either 'value' or 'shape' + 'init', not both ('{key}')")
            array = self._values(table["value"], where, "value", dtype)
        elif "shape" in table:
            array = self._initialised(table, where, dtype)
        else:
            raise self.fail(where, "needs 'value' (a number or nested list) or 'shape' and 'init'")
        return LeafSpec(name, role, _frozen(array), requires_grad, note)

    def _values(self, value: Any, where: str, key: str, dtype: str) -> np.ndarray:
        shape = _nested_shape(value, self.fail(where, f"'{key}' must be a number or a rectangular nested list"))
        n = math.prod(shape)
        self._count(n, where)
        flat = list(_flatten(value))
        for x in flat:
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                raise self.fail(where, f"'{key}' holds {shown(x)}; only numbers are allowed")
            if isinstance(x, float) and not math.isfinite(x):
                raise self.fail(where, f"'{key}' holds {x}; values must be finite")
            if dtype == "int" and not isinstance(x, int):
                raise self.fail(where, f"'{key}' holds {shown(x)}; an int tensor takes whole numbers")
            if dtype == "float" and abs(x) > FLOAT32_MAX:
                raise self.fail(where, f"'{key}' holds {shown(x)}, out of float32 range")
            if dtype == "float" and underflows(x):
                smallest = "the smallest is about 1.4e-45"
                raise self.fail(where, f"'{key}' holds {shown(x)}, which float32 stores as 0 ({smallest})")
            if dtype == "int" and abs(x) > 2**62:
                raise self.fail(where, f"'{key}' holds {shown(x)}, out of int64 range")
        np_dtype = np.int64 if dtype == "int" else np.float32
        return np.array(flat, dtype=np_dtype).reshape(shape)

    def _initialised(self, table: dict, where: str, dtype: str) -> np.ndarray:
        shape = table["shape"]
        if (
            not isinstance(shape, list)
            or len(shape) > 4
            or not all(type(d) is int and d >= 1 for d in shape)
        ):
            raise self.fail(where, f"shape must be a list of up to 4 positive integers, got {shown(shape)}")
        self._count(math.prod(shape), where)
        init = table.get("init")
        if init not in INITS:
            raise self.fail(where, f"init must be one of {', '.join(INITS)}, got {shown(init)}")
        seed = table.get("seed", 0)
        if type(seed) is not int or not 0 <= seed < 2**63:
            raise self.fail(where, f"seed must be a non-negative integer, got {shown(seed)}")
        if (init == "randint") != (dtype == "int"):
            raise self.fail(where, "init 'randint' goes with dtype 'int', and only with it")
        high = table.get("high")
        if init == "randint":
            if type(high) is not int or not 1 <= high <= 2**31:
                raise self.fail(where, "init 'randint' needs 'high', a positive integer (values are 0..high-1)")
        elif high is not None:
            raise self.fail(where, "'high' is only for init 'randint'")
        import_torch()
        import torch

        gen = torch.Generator().manual_seed(seed)
        if init == "zeros":
            t = torch.zeros(shape)
        elif init == "ones":
            t = torch.ones(shape)
        elif init == "randn":
            t = torch.randn(shape, generator=gen)
        elif init == "rand":
            t = torch.rand(shape, generator=gen)
        else:
            t = torch.randint(0, high, shape, generator=gen)
        return t.numpy()

    def _count(self, n: int, where: str) -> None:
        if n > limits.MAX_ELEMENTS_PER_TENSOR:
            limit = limits.MAX_ELEMENTS_PER_TENSOR
            raise self.fail(where, f"{count_text(n)} elements; the limit per tensor is {limit:,}")
        self.total_elements += n
        if self.total_elements > limits.MAX_ELEMENTS_TOTAL:
            raise self.fail(where, f"more than {limits.MAX_ELEMENTS_TOTAL:,} elements in all tensors together")

    # -- modules

    def _module(self, name: str, table: dict) -> tuple[ModuleSpec, list[LeafSpec]]:
        where = f"[modules.{name}]"
        mtype = table.get("type")
        if mtype not in MODULE_TYPES:
            raise self.fail(where, f"type must be one of {', '.join(MODULE_TYPES)}, got {shown(mtype)}")
        kind = KINDS[mtype]
        allowed = _MODULE_KEYS | {o.key for o in kind.options}
        if not kind.bias_optional:
            allowed = allowed - {"bias"} if mtype == "Embedding" else allowed
        self._unknown_keys(table, allowed, where)
        options = {o.key: self._option(table, o, where, kind) for o in kind.options}
        bias = table.get("bias", True)
        has_bias = bias is not False
        if not kind.bias_optional and bias is False:
            raise self.fail(where, f"a {mtype} always has its bias; bias = false is only for Linear, Conv1d and Conv2d")
        requires_grad = table.get("requires_grad", True)
        if not isinstance(requires_grad, bool):
            raise self.fail(where, "requires_grad must be true or false")
        note = self._string(table, "note", where, default="")
        shapes = parameter_shapes(kind, options, has_bias)

        explicit = "weight" in table
        seed = table.get("seed")
        if explicit and seed is not None:
            raise self.fail(where, "give either explicit 'weight' (and 'bias') or 'seed', not both")
        if explicit:
            values = {"weight": self._values(table["weight"], where, "weight", "float")}
            if "bias" in shapes:
                if isinstance(bias, bool):
                    unless = " (or bias = false)" if kind.bias_optional else ""
                    raise self.fail(where, f"with an explicit weight, give 'bias' values too{unless}")
                values["bias"] = self._values(bias, where, "bias", "float")
            for pname, expected in shapes.items():
                if values[pname].shape != expected:
                    layout = kind.weight_layout(options) if pname == "weight" else "[" + _bias_layout(kind) + "]"
                    raise self.fail(
                        where, f"{pname} has shape {list(values[pname].shape)}, expected {layout} = {list(expected)}"
                    )
        else:
            if not isinstance(bias, bool):
                raise self.fail(
                    where, "bias values need an explicit 'weight' too; or give 'seed' and bias = true/false"
                )
            seed = 0 if seed is None else seed
            if type(seed) is not int or not 0 <= seed < 2**63:
                raise self.fail(where, f"seed must be a non-negative integer, got {shown(seed)}")
            for shape in shapes.values():  # explicit values are counted as they are read
                self._count(math.prod(shape), where)
            values = _seeded_module(kind, options, has_bias, seed)

        spec = ModuleSpec(name, mtype, tuple(options.items()), tuple(shapes), note)
        params = [
            LeafSpec(f"{name}.{pname}", "parameter", _frozen(values[pname]), requires_grad, note, module=name)
            for pname in shapes
        ]
        return spec, params

    def _option(self, table: dict, option: Option, where: str, kind: ModuleKind) -> Any:
        key = option.key
        if key not in table:
            if option.default is None:
                needed = ", ".join(o.key for o in kind.options if o.default is None)
                raise self.fail(where, f"missing '{key}': a {kind.type} needs {needed}")
            return option.default
        v = table[key]
        if option.number:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= FLOAT32_MAX:
                raise self.fail(where, f"'{key}' must be a positive number, got {shown(v)}")
            return float(v)
        low = "a positive" if option.minimum else "a non-negative"

        def whole(x: Any) -> bool:
            return type(x) is int and option.minimum <= x <= limits.MAX_ELEMENTS_PER_TENSOR

        if option.pair or option.list_ok:
            length_ok = isinstance(v, list) and 0 < len(v) <= 4 and (not option.pair or len(v) == option.pair)
            if length_ok and all(map(whole, v)):
                return v
            if whole(v):
                return v
            n = f"a list of {option.pair}" if option.pair > 1 else "a list"
            if option.pair == 1:
                raise self.fail(where, f"'{key}' must be {low} integer, got {shown(v)}")
            raise self.fail(where, f"'{key}' must be {low} integer or {n} of them, got {shown(v)}")
        if not whole(v):
            raise self.fail(where, f"'{key}' must be {low} integer, got {shown(v)}")
        return v

    # -- steps

    def _exercises(self, exercises: Any, nodes: set[str], output: str) -> tuple[ExerciseSpec, ...]:
        """[[exercises]]: name, node, allowed (names the answer may read), prompt."""
        if not isinstance(exercises, list) or not all(isinstance(e, dict) for e in exercises):
            raise self.fail("exercises", "must be an array of tables, written [[exercises]]")
        if len(exercises) > limits.MAX_EXERCISES:
            raise self.fail("exercises", f"{len(exercises)} exercises; the limit is {limits.MAX_EXERCISES}")
        specs: list[ExerciseSpec] = []
        for i, table in enumerate(exercises):
            name = table.get("name")
            where = f"exercise {name!r} (exercises[{i}])" if isinstance(name, str) else f"exercises[{i}]"
            self._unknown_keys(table, _EXERCISE_KEYS, where)
            if not isinstance(name, str) or not is_valid_name(name):
                raise self.fail(where, "needs a 'name' (letters, digits, '_'; no leading '_')")
            if name in nodes or any(e.name == name for e in specs):
                raise self.fail(where, f"duplicate name {name!r}")
            node = table.get("node")
            if not isinstance(node, str) or node not in nodes or node == output:
                raise self.fail(where, f"'node' must name a tensor or step whose gradient is asked, got {node!r}")
            allowed = table.get("allowed")
            if not isinstance(allowed, list) or not allowed or not all(isinstance(a, str) for a in allowed):
                raise self.fail(where, "'allowed' must be a non-empty list of names, e.g. [\"logits\", \"Yb\"]")
            for a in allowed:
                if a not in nodes and not (a.startswith("d") and a[1:] in nodes):
                    raise self.fail(where, f"'allowed' names {a!r}, which is neither a node nor d + a node's name")
            prompt = self._string(table, "prompt", where, default="")
            specs.append(ExerciseSpec(name, node, tuple(dict.fromkeys(allowed)), prompt))
        return tuple(specs)

    def _answers(
        self, table: Any, nodes: set[str], output: str, exercises: tuple[ExerciseSpec, ...]
    ) -> tuple[tuple[str, str], ...]:
        """[answers]: a learner's answers, as an answer file holds them (`dh = "..."`, and an
        [answers.exercises] table by exercise name). Only their form is checked here; each is
        judged, as any answer, when the exercise is opened."""
        if not isinstance(table, dict):
            raise self.fail("answers", 'must be a table of dname = "answer"')
        names = {e.name for e in exercises}
        items: list[tuple[str, str]] = []
        for key, text in table.items():
            if key == "exercises":
                if not isinstance(text, dict):
                    raise self.fail("answers.exercises", 'must be a table of name = "answer"')
                for name, answer in text.items():
                    if name not in names:
                        raise self.fail("answers.exercises", f"{name!r} is not one of the preset's [[exercises]]")
                    items.append((name, self._answer_text(f"answers.exercises.{name}", answer)))
                continue
            if not (key.startswith("d") and key[1:] in nodes and key[1:] != output):
                raise self.fail("answers", f"{key!r} is not d + the name of a tensor or step (other than the output)")
            items.append((key[1:], self._answer_text(f"answers.{key}", text)))
        return tuple(items)

    def _answer_text(self, where: str, text: Any) -> str:
        if not isinstance(text, str):
            raise self.fail(where, "must be a string holding an expression")
        if len(text) > limits.MAX_EXPR_CHARS:
            raise self.fail(where, f"is {len(text):,} characters long; the limit is {limits.MAX_EXPR_CHARS:,}")
        return text

    def _steps(self, steps: list[dict], taken: dict[str, str], modules: set[str], check) -> list[StepSpec]:
        all_step_names = [s.get("name") for s in steps]
        defined = {n for n, w in taken.items() if w.startswith("[tensors.")}
        specs: list[StepSpec] = []
        for i, table in enumerate(steps):
            sname = table.get("name")
            where = f"step {sname!r} (steps[{i}])" if isinstance(sname, str) else f"steps[{i}]"
            self._unknown_keys(table, _STEP_KEYS, where)
            if not isinstance(sname, str):
                raise self.fail(where, "needs a 'name' (a string)")
            self._claim(taken, sname, f"step {sname!r}")
            text = table.get("expr")
            if not isinstance(text, str):
                raise self.fail(where, "needs an 'expr' (a string), e.g. expr = \"w * x + b\"")
            note = self._string(table, "note", where, default="")
            try:
                parsed = parse_expression(text, modules)
            except PresetError as exc:
                raise self.fail(where, str(exc)) from None
            for ref in parsed.names:
                if ref == sname:
                    raise self.fail(where, f"uses itself ({sname!r}); steps cannot form a cycle")
                if ref in defined:
                    continue
                if ref in all_step_names:
                    raise self.fail(where, f"uses {ref!r} before it is defined (steps run in order)")
                if ref in modules:
                    raise self.fail(where, f"{ref!r} is a module; call it, e.g. {ref}(x)")
                raise self.fail(where, f"unknown name {ref!r}")
            defined.add(sname)
            specs.append(StepSpec(sname, parsed, note))
            check.step(specs[-1])
        return specs


# ---------------------------------------------------------------- helpers


def printable(text: str) -> str:
    """One line with no control characters, so a hostile name cannot drive the terminal."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _long_integer(text: str) -> str:
    """Where the integer tomllib could not read is, and how long it is."""
    match = max(re.finditer(r"[0-9A-Fa-f_]+", text), key=lambda m: len(m.group()), default=None)
    if match is None:
        return "a number TOML cannot read"
    line = text.count("\n", 0, match.start()) + 1
    return f"line {line}: an integer of {len(match.group().replace('_', '')):,} digits"


def _type_name(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _nested_shape(value: Any, error: PresetError) -> tuple[int, ...]:
    """Shape of a rectangular nested list, checked iteratively (no deep recursion)."""
    shape: list[int] = []
    probe = value
    while isinstance(probe, list):
        if not probe or len(shape) >= 4:
            raise error
        shape.append(len(probe))
        probe = probe[0]
    if math.prod(shape) > limits.MAX_ELEMENTS_PER_TENSOR:
        return tuple(shape)  # the caller reports the element limit
    level = [value]
    for dim in shape:
        nxt = []
        for item in level:
            if not isinstance(item, list) or len(item) != dim:
                raise error
            nxt.extend(item)
        level = nxt
    if any(isinstance(item, list) for item in level):
        raise error
    return tuple(shape)


def _flatten(value: Any):
    if isinstance(value, list):
        for item in value:
            yield from _flatten(item)
    else:
        yield value


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.array(array, copy=True, order="C")  # (ascontiguousarray would make 0-d into 1-d)
    array.setflags(write=False)
    return array


def _seeded_module(kind: ModuleKind, options: dict[str, Any], has_bias: bool, seed: int) -> dict[str, np.ndarray]:
    """PyTorch's own initialisation of the module, under a fixed seed, without touching global RNG."""
    import_torch()
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layer = kind.build(options, has_bias)
    return {pname: p.detach().numpy().copy() for pname, p in layer.named_parameters()}


def _bias_layout(kind: ModuleKind) -> str:
    names = {"Linear": "out_features", "LayerNorm": "normalized_shape", "BatchNorm1d": "num_features"}
    return names.get(kind.type, "out_channels")


# ---------------------------------------------------------------- bundled presets


def presets_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "presets"


def bundled_presets() -> dict[str, Path]:
    """Bundled preset names to their files, sorted by name."""
    return {p.stem: p for p in sorted(presets_dir().glob("*.toml"))}


def resolve_preset(name_or_path: str) -> Path:
    bundled = bundled_presets()
    if name_or_path in bundled:
        return bundled[name_or_path]
    try:
        path = expand(name_or_path)
        os.stat(path)
    except FileRefused as exc:
        raise PresetError(f"{printable(name_or_path)}: {exc}") from None
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise PresetError(f"{printable(Path(name_or_path).name)}: cannot read file: {exc.strerror or exc}") from None
    else:
        return path  # anything but a regular file is refused, with its kind, when it is read
    raise PresetError(f"no preset named {name_or_path!r} and no such file; bundled: {', '.join(bundled)}")
