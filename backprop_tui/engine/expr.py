"""The expression language of preset steps: parsed safely, evaluated with torch.

Text is parsed by Python's `ast` in "eval" mode and then checked against an
allow-list; what passes is turned into a small tree of our own (`Expr`) that is
walked by `evaluate`. The text is never given to eval, exec or compile.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Any, Callable

from backprop_tui.engine.errors import PresetError
from backprop_tui.engine.functions import FUNCTIONS, Function
from backprop_tui.engine.limits import MAX_EXPR_CHARS, MAX_EXPR_DEPTH
from backprop_tui.engine.numbers import FLOAT32_MAX, short_number, underflows

# ---------------------------------------------------------------- the tree


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Ref:
    name: str


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * / ** @
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True)
class Neg:
    operand: "Expr"


@dataclass(frozen=True)
class Transpose:
    operand: "Expr"


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple["Expr", ...]
    kwargs: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class ModuleCall:
    module: str
    arg: "Expr"


Expr = Num | Ref | BinOp | Neg | Transpose | Call | ModuleCall

# ---------------------------------------------------------------- functions


# Functions whose arguments after the first are whole numbers (a new shape, or dimensions), not
# tensors: the name of the Call keyword that holds them.
NUMBER_FUNCS = {name: fn.numbers for name, fn in FUNCTIONS.items() if fn.numbers}
SHAPE_FUNCS = tuple(name for name, fn in FUNCTIONS.items() if fn.sizes)
INDEX = "[]"  # the Call name of indexing, x[...]: not a name a preset can write

_BINOPS = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
    ast.MatMult: "@",
}

_FORBIDDEN_WORDS = {
    ast.Lambda: "lambda",
    ast.ListComp: "a list comprehension",
    ast.SetComp: "a set comprehension",
    ast.DictComp: "a dict comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.NamedExpr: "':=' (walrus)",
    ast.Compare: "a comparison",
    ast.BoolOp: "'and'/'or'",
    ast.IfExp: "'if ... else'",
    ast.Await: "'await'",
    ast.Yield: "'yield'",
    ast.YieldFrom: "'yield'",
    ast.Starred: "'*' unpacking",
    ast.List: "a list literal",
    ast.Tuple: "a tuple",
    ast.Dict: "a dict literal",
    ast.Set: "a set literal",
    ast.Slice: "a slice outside an index",
}

# ---------------------------------------------------------------- parsing


@dataclass(frozen=True)
class ParsedExpr:
    """A checked expression: its text, its tree and the names it reads, in order."""

    text: str
    tree: Expr
    names: tuple[str, ...]
    modules: tuple[str, ...]
    reads: tuple[str, ...]  # names and modules, in order of first appearance


def is_valid_name(name: str) -> bool:
    return name.isidentifier() and name.isascii() and "__" not in name and not name.startswith("_")


def parse_expression(text: str, modules: frozenset[str] | set[str] = frozenset()) -> ParsedExpr:
    """Parse `text` into a checked tree; raise PresetError with a one-line reason."""
    if not isinstance(text, str):
        raise PresetError("expression must be a string")
    if len(text) > MAX_EXPR_CHARS:
        raise PresetError(f"expression is {len(text)} characters long; the limit is {MAX_EXPR_CHARS}")
    if not text.strip():
        raise PresetError("expression is empty")
    _check_characters(text)
    text = text.translate(_LINE_BREAKS).strip()  # one line wherever it is shown
    _check_bracket_depth(text)
    try:
        module = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        detail = exc.msg or "invalid syntax"
        where = f" at column {exc.offset}" if exc.offset else ""
        raise PresetError(f"syntax error in expression {text!r}{where}: {detail}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise PresetError(f"cannot parse expression: {type(exc).__name__}") from None
    _check_tree_depth(module.body)
    builder = _Builder(modules)
    tree = builder.build(module.body)
    return ParsedExpr(
        text=text,
        tree=tree,
        names=tuple(dict.fromkeys(builder.names)),
        modules=tuple(dict.fromkeys(builder.modules)),
        reads=tuple(dict.fromkeys(builder.reads)),
    )


_LINE_BREAKS = str.maketrans("\t\n\r", "   ")


def _check_characters(text: str) -> None:
    """ASCII only, before Python sees it: its parser folds look-alikes (`ℯxp(ｗ)` is
    `exp(w)`). No comments ('#' can only start one, as strings are not allowed) and no
    control characters, so the text shown is the text computed and drives no terminal."""
    for column, ch in enumerate(text, 1):
        if ch == "#":
            raise PresetError(f"'#' at column {column} starts a comment; comments are not allowed in an expression")
        if not ch.isascii():
            raise PresetError(
                f"the character U+{ord(ch):04X} at column {column} is not ASCII; "
                "names, numbers and operators in an expression are ASCII only"
            )
        if not ch.isprintable() and ch not in "\t\n\r":
            code = f"U+{ord(ch):04X}"
            raise PresetError(f"the control character {code} at column {column} is not allowed in an expression")


def _check_bracket_depth(text: str) -> None:
    depth = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            if depth > MAX_EXPR_DEPTH:
                raise PresetError(f"expression nests brackets deeper than {MAX_EXPR_DEPTH} levels")
        elif ch in ")]}":
            depth -= 1


def _check_tree_depth(root: ast.AST) -> None:
    """Iterative, so a very deep tree is refused rather than blowing the stack."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_EXPR_DEPTH:
            raise PresetError(f"expression nests deeper than {MAX_EXPR_DEPTH} operations; split it into steps")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


class _Builder:
    def __init__(self, modules: frozenset[str] | set[str]):
        self.module_names = set(modules)
        self.names: list[str] = []
        self.modules: list[str] = []
        self.reads: list[str] = []

    def build(self, node: ast.AST) -> Expr:
        method = getattr(self, f"_build_{type(node).__name__}", None)
        if method is None:
            what = _FORBIDDEN_WORDS.get(type(node), type(node).__name__)
            raise PresetError(f"{what} is not allowed in an expression")
        return method(node)

    def _build_Constant(self, node: ast.Constant) -> Expr:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PresetError(f"constant {value!r} is not allowed; only numbers")
        too_large = isinstance(value, int) and abs(value) > 2**63
        if too_large or not math.isfinite(float(value)) or abs(float(value)) > FLOAT32_MAX:
            raise PresetError(f"constant {short_number(value)} is out of float32 range")
        if underflows(float(value)):
            raise PresetError(f"constant {short_number(value)} is so small that float32 stores it as 0")
        return Num(float(value))

    def _build_Name(self, node: ast.Name) -> Expr:
        name = node.id
        if not is_valid_name(name):
            raise PresetError(f"name {name!r} is not allowed (no leading underscore or '__')")
        if name in FUNCTIONS:
            raise PresetError(f"{name!r} is a function; call it, e.g. {name}(x)")
        if name in self.module_names:
            raise PresetError(f"{name!r} is a module; call it, e.g. {name}(x)")
        self.names.append(name)
        self.reads.append(name)
        return Ref(name)

    def _build_BinOp(self, node: ast.BinOp) -> Expr:
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise PresetError(f"operator {type(node.op).__name__} is not allowed; use + - * / ** @")
        return BinOp(op, self.build(node.left), self.build(node.right))

    def _build_UnaryOp(self, node: ast.UnaryOp) -> Expr:
        if isinstance(node.op, ast.USub):
            operand = self.build(node.operand)
            return Num(-operand.value) if isinstance(operand, Num) else Neg(operand)
        if isinstance(node.op, ast.UAdd):
            return self.build(node.operand)
        raise PresetError(f"unary operator {type(node.op).__name__} is not allowed")

    def _build_Attribute(self, node: ast.Attribute) -> Expr:
        if node.attr != "T":
            raise PresetError(f"attribute access '.{node.attr}' is not allowed; only '.T' (transpose)")
        return Transpose(self.build(node.value))

    def _build_Subscript(self, node: ast.Subscript) -> Expr:
        """x[i, 1:3, Xb, range(32)]: a Call of INDEX whose `items` keyword says what each
        position holds; tensor positions refer to the Call's args after the first."""
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        args: list[Expr] = [self.build(node.value)]
        kinds: list[tuple] = []
        for item in items:
            if isinstance(item, ast.Slice):
                kinds.append(
                    (
                        "slice",
                        *(
                            None if p is None else _index_int(p, "a slice bound")
                            for p in (item.lower, item.upper, item.step)
                        ),
                    )
                )
            elif isinstance(item, ast.Call) and isinstance(item.func, ast.Name) and item.func.id == "range":
                if item.keywords or len(item.args) != 1:
                    raise PresetError("range() in an index takes one whole number, e.g. x[range(32), y]")
                n = _index_int(item.args[0], "range()'s argument")
                if n < 1:
                    raise PresetError(f"range({n}) is empty; give a positive number")
                kinds.append(("range", n))
            elif isinstance(item, ast.Constant) and not isinstance(item.value, int):
                raise PresetError(f"an index must be a whole number, a slice or an int tensor, not {item.value!r}")
            elif _is_int_literal(item):
                kinds.append(("int", _index_int(item, "an index")))
            else:
                kinds.append(("tensor", len(args)))
                args.append(self.build(item))
        if any(k[0] == "slice" and k[3] is not None and k[3] < 1 for k in kinds):
            raise PresetError("a slice's step must be a positive whole number")
        return Call(INDEX, tuple(args), (("items", tuple(kinds)),))

    def _build_Call(self, node: ast.Call) -> Expr:
        if isinstance(node.func, ast.Name) and node.func.id == "range":
            raise PresetError("range() is only allowed inside an index, e.g. logprobs[range(32), Yb]")
        if isinstance(node.func, ast.Name) and node.func.id in SHAPE_FUNCS:
            return self._shape_call(node)
        if isinstance(node.func, ast.Name) and node.func.id in NUMBER_FUNCS:
            return self._dims_call(node)
        if not isinstance(node.func, ast.Name):
            raise PresetError("only functions and declared modules can be called, by name")
        name = node.func.id
        if name in self.module_names:
            if node.keywords or len(node.args) != 1:
                raise PresetError(f"module {name!r} takes exactly one argument, e.g. {name}(X)")
            arg = self.build(node.args[0])  # the input first, then the module's parameters
            self.modules.append(name)
            self.reads.append(name)
            return ModuleCall(name, arg)
        spec = FUNCTIONS.get(name)
        if spec is None:
            raise PresetError(
                f"{name!r} is not a function or declared module; functions: {', '.join(FUNCTIONS)}"
            )
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise PresetError(f"'*' unpacking is not allowed in {name}()")
        if len(node.args) < len(spec.args) or (len(node.args) > len(spec.args) and not spec.variadic):
            raise PresetError(f"{name}() takes {spec.arity()}, got {len(node.args)}")
        kwargs = tuple((kw.arg, self._keyword(name, spec, kw)) for kw in node.keywords)
        if "keepdim" in dict(kwargs) and "dim" not in dict(kwargs):
            raise PresetError(f"{name}(keepdim=...) needs dim= as well")
        return Call(name, tuple(self.build(a) for a in node.args), kwargs)

    def _shape_call(self, node: ast.Call) -> Expr:
        name = node.func.id  # type: ignore[attr-defined]
        if node.keywords or len(node.args) < 2:
            raise PresetError(f"{name}() takes a tensor and whole numbers after it, e.g. {FUNCTIONS[name].signature}")
        sizes = tuple(_index_int(a, f"{name}()'s sizes") for a in node.args[1:])
        if sum(1 for d in sizes if d == -1) > 1 or any(d < -1 or d == 0 for d in sizes):
            raise PresetError(f"{name}() sizes must be positive, with at most one -1 (inferred); got {sizes}")
        return Call(name, (self.build(node.args[0]),), (("shape", sizes),))

    def _dims_call(self, node: ast.Call) -> Expr:
        name = node.func.id  # type: ignore[attr-defined]
        count = FUNCTIONS[name].dims
        if node.keywords or len(node.args) != 1 + count:
            raise PresetError(
                f"{name}() takes a tensor and {count} dimensions, whole numbers, e.g. {FUNCTIONS[name].signature}"
            )
        dims = tuple(_index_int(a, f"a dimension of {name}()") for a in node.args[1:])
        return Call(name, (self.build(node.args[0]),), (("dims", dims),))

    def _keyword(self, func: str, spec: Function, kw: ast.keyword) -> Any:
        if kw.arg is None:
            raise PresetError(f"'**' unpacking is not allowed in {func}()")
        allowed = spec.keywords.get(kw.arg)
        if allowed is None:
            names = ", ".join(f"{k}=" for k in spec.keywords) or "none"
            raise PresetError(f"{func}() has no keyword {kw.arg!r}; allowed: {names}")
        value = _literal(kw.value)
        if isinstance(allowed, tuple):
            if value not in allowed:
                raise PresetError(f"{func}({kw.arg}=...) must be one of {', '.join(map(repr, allowed))}")
        elif allowed is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise PresetError(f"{func}({kw.arg}=...) must be an integer")
        elif allowed is bool and not isinstance(value, bool):
            raise PresetError(f"{func}({kw.arg}=...) must be True or False")
        elif allowed is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise PresetError(f"{func}({kw.arg}=...) must be a number")
            value = float(value)
        return value


def _is_int_literal(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) is int


def _index_int(node: ast.AST, what: str) -> int:
    if not _is_int_literal(node):
        raise PresetError(f"{what} must be a whole number written in the expression")
    value = node.operand.value if isinstance(node, ast.UnaryOp) else node.value  # type: ignore[attr-defined]
    value = -value if isinstance(node, ast.UnaryOp) else value
    if abs(value) > 2**31:
        raise PresetError(f"{what} {value} is too large")
    return value


def index_text(target: str, items: tuple, tensors: list[str]) -> str:
    """x[...] as written: `tensors` are the texts of the tensor positions' args."""
    parts = []
    for kind in items:
        if kind[0] == "int":
            parts.append(str(kind[1]))
        elif kind[0] == "range":
            parts.append(f"range({kind[1]})")
        elif kind[0] == "tensor":
            parts.append(tensors[kind[1] - 1])
        else:
            start, stop, step = (("" if v is None else str(v)) for v in kind[1:])
            parts.append(f"{start}:{stop}" + (f":{step}" if step else ""))
    return f"{target}[{', '.join(parts)}]"


def call_text(func: str, args: list[str], kwargs: tuple) -> str:
    """A Call as written in a preset (indexing and reshape have their own notation)."""
    if func == INDEX:
        return index_text(args[0], dict(kwargs)["items"], args[1:])
    if func in NUMBER_FUNCS:
        return f"{func}({', '.join([args[0], *map(str, dict(kwargs)[NUMBER_FUNCS[func]])])})"
    return f"{func}({', '.join(args + [f'{k}={v!r}' for k, v in kwargs])})"


def _literal(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (bool, int, float, str)):
        value = node.value
    elif (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and type(node.operand.value) in (int, float)
    ):
        value = -node.operand.value
    else:
        raise PresetError("keyword values must be plain constants (a number, True/False or a string)")
    if isinstance(value, float) and (not math.isfinite(value) or abs(value) > FLOAT32_MAX):
        raise PresetError(f"keyword value {short_number(value)} is out of float32 range")
    return value


# ---------------------------------------------------------------- evaluation


def evaluate(tree: Expr, ops: "Ops") -> Any:
    """Walk the tree, asking `ops` for each operation (torch ops, or shape checks)."""
    match tree:
        case Num(value):
            return ops.number(value)
        case Ref(name):
            return ops.ref(name)
        case BinOp(op, left, right):
            return ops.binop(op, evaluate(left, ops), evaluate(right, ops))
        case Neg(operand):
            return ops.neg(evaluate(operand, ops))
        case Transpose(operand):
            return ops.transpose(evaluate(operand, ops))
        case Call(func, args, kwargs):
            return ops.call(func, [evaluate(a, ops) for a in args], dict(kwargs))
        case ModuleCall(module, arg):
            return ops.module(module, evaluate(arg, ops))
    raise TypeError(f"unknown expression node {tree!r}")  # pragma: no cover


class Ops:
    """What `evaluate` needs; graph.py implements it with real torch ops."""

    number: Callable[[float], Any]
    ref: Callable[[str], Any]
    binop: Callable[[str, Any, Any], Any]
    neg: Callable[[Any], Any]
    transpose: Callable[[Any], Any]
    call: Callable[[str, list, dict], Any]
    module: Callable[[str, Any], Any]


def unparse(tree: Expr) -> str:
    """Text of a tree, for messages and exports."""
    match tree:
        case Num(value):
            if value == 0 and math.copysign(1.0, value) < 0:
                return "-0.0"
            return repr(int(value)) if value == int(value) and abs(value) < 1e15 else repr(value)
        case Ref(name):
            return name
        case BinOp(op, left, right):
            return f"({unparse(left)} {op} {unparse(right)})"
        case Neg(operand):
            return f"-{unparse(operand)}"
        case Transpose(operand):
            return f"{unparse(operand)}.T"
        case Call(func, args, kwargs):
            return call_text(func, [unparse(a) for a in args], kwargs)
        case ModuleCall(module, arg):
            return f"{module}({unparse(arg)})"
    raise TypeError(tree)  # pragma: no cover
