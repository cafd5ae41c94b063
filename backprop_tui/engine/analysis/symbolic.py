"""Expressions as text a learner reads, and their derivatives in symbols.

`show(tree)` prints an expression with only the parentheses it needs (parseable by
`expr.parse_expression` in the ASCII style; `h³ + 1`, `σ(z)`, `w·x` in the display style).
`derivative(tree, name)` differentiates the elementwise part of the expression language
symbolically, for *reading only*: every number the UI shows comes from torch.
"""

from __future__ import annotations

import functools
import math
from typing import Mapping

from backprop_tui.engine.expr import BinOp, Call, Expr, ModuleCall, Neg, Num, Ref, Transpose, call_text
from backprop_tui.engine.expr import parse_expression
from backprop_tui.engine.functions import FUNCTIONS, HELPERS
from backprop_tui.engine.modules import KINDS
from backprop_tui.engine.numbers import fmt

# ---------------------------------------------------------------- words per op

RULES: dict[str, str] = {
    "@": "∂(A@B): the incoming grad G gives G@Bᵀ for A and Aᵀ@G for B",
    "T": "transpose: the incoming grad is transposed back",
    **{kind.type: kind.rule for kind in KINDS.values()},  # Linear, Conv2d, ...: the module kinds' own words
    **{name: fn.rule for name, fn in FUNCTIONS.items() if fn.rule},  # relu, cat, ...: the registry's words
}
POINTWISE_FUNCS = tuple(name for name, fn in FUNCTIONS.items() if fn.pointwise)

# ---------------------------------------------------------------- printing

_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "@": 2, "**": 4}
_NEG, _ATOM = 3, 5
_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_DISPLAY_FUNCS = {"sigmoid": "σ", "sqrt": "√", **{name: h.display for name, h in HELPERS.items()}}


def show(tree: Expr, display: bool = False) -> str:
    """The expression as text: ASCII and parseable, or (display=True) in math symbols."""
    return _show(tree, display)[0]


def _number(value: float, display: bool) -> str:
    if display:
        return fmt(value).replace("-", "−")
    if not math.isfinite(value):
        return "1e999" if value > 0 else "-1e999"  # what the parser reads back as inf
    if value == 0 and math.copysign(1.0, value) < 0:
        return "-0.0"  # the sign decides x / -0.0 = -inf
    return repr(int(value)) if value == int(value) and abs(value) < 1e15 else repr(value)


def _show(tree: Expr, display: bool) -> tuple[str, int]:
    match tree:
        case Num(value):
            return _number(value, display), (_NEG if value < 0 or math.copysign(1, value) < 0 else _ATOM)
        case Ref(name):
            return name, _ATOM
        case Neg(operand):
            if display:  # −2x reads as −(2x); the value is the same either way
                return "−" + _wrap(operand, _PREC["*"], display, strict=False), _NEG
            return "-" + _wrap(operand, _NEG, display, strict=False), _NEG
        case Transpose(operand):
            return _wrap(operand, _ATOM, display, strict=False) + ("ᵀ" if display else ".T"), _ATOM
        case ModuleCall(module, arg):
            return f"{module}({show(arg, display)})", _ATOM
        case Call(func, args, kwargs):
            name = _DISPLAY_FUNCS.get(func, func) if display else func
            return call_text(name, [show(a, display) for a in args], kwargs), _ATOM
        case BinOp(op, left, right):
            return _binop(op, left, right, display), _PREC[op]
    raise TypeError(f"unknown expression node {tree!r}")  # pragma: no cover


def _wrap(tree: Expr, level: int, display: bool, strict: bool) -> str:
    """Parenthesise `tree` when it binds looser than `level` (or equally, if strict)."""
    text, prec = _show(tree, display)
    return f"({text})" if prec < level or (strict and prec == level) else text


def _binop(op: str, left: Expr, right: Expr, display: bool) -> str:
    p = _PREC[op]
    if op == "**":
        base = _wrap(left, _ATOM, display, strict=False)  # (-x)**2, (a*b)**2, (a**b)**c
        if display and isinstance(right, Num) and right.value == int(right.value) and 0 <= right.value < 10:
            return base + str(int(right.value)).translate(_SUPERSCRIPT)
        return f"{base}**{_wrap(right, _NEG, display, strict=False)}"  # x**-1 and x**y**z read back
    a = _wrap(left, p, display, strict=False)
    b = _wrap(right, p, display, strict=True)  # a - (b - c), a / (b * c)
    if display and op == "*":
        b = _wrap(right, p, display, strict=False)  # a product reads the same in any grouping
        # "2g", "3h²", "2(p − y)": a number times a name, power or bracket reads without a dot
        if isinstance(left, Num) and left.value >= 0 and not b[0].isdigit():
            return a + b
        if a.endswith(")") and b.startswith("("):  # σ(z)(1 − σ(z))
            return a + b
        return f"{a}·{b}"
    if display and op == "/":
        return f"{a}/{b}"
    symbol = {"-": "−"}.get(op, op) if display else op
    return f"{a} {symbol} {b}"


# ---------------------------------------------------------------- derivatives


class NotElementwise(Exception):
    """The expression holds an op (sum over a dim, @, a module, a loss) differentiated in words."""


def is_pointwise(tree: Expr) -> bool:
    """Whether each element of the result depends on the same element of each operand
    alone: arithmetic and elementwise functions only (no sum, @, .T, module or loss).
    An operand broadcast up to the result's shape is the exception, so callers also
    compare shapes (see live.LocalStep.jacobian)."""
    match tree:
        case Num() | Ref():
            return True
        case Neg(a):
            return is_pointwise(a)
        case BinOp(op, a, b) if op in ("+", "-", "*", "/", "**"):
            return is_pointwise(a) and is_pointwise(b)
        case Call(func, (u,), _) if func in POINTWISE_FUNCS:
            return is_pointwise(u)
    return False


def is_elementwise(tree: Expr) -> bool:
    try:
        derivative(tree, "")
    except NotElementwise:
        return False
    return True


def derivative(tree: Expr, name: str) -> Expr:
    """∂tree/∂name, elementwise, simplified; NotElementwise for ops without a formula here.

    `sum(u)` and `mean(u)` over all elements are allowed: for a scalar result, the formula
    is then the gradient element by element (the derivative of u, divided by N for mean).
    """
    return simplify(_d(tree, name))


def _d(tree: Expr, v: str) -> Expr:
    match tree:
        case Num():
            return Num(0.0)
        case Ref(name):
            return Num(1.0 if name == v else 0.0)
        case Neg(a):
            return neg(_d(a, v))
        case BinOp("+", a, b):
            return add(_d(a, v), _d(b, v))
        case BinOp("-", a, b):
            return sub(_d(a, v), _d(b, v))
        case BinOp("*", a, b):
            return add(mul(_d(a, v), b), mul(a, _d(b, v)))
        case BinOp("/", a, b):
            da, db = _d(a, v), _d(b, v)
            return sub(div(da, b), div(mul(a, db), power(b, Num(2.0))))
        case BinOp("**", a, b):
            return _d_power(a, b, v)
        case Call(func, (u,), _) if func in POINTWISE_FUNCS:
            return mul(outer_derivative(func, u), _d(u, v))
        case Call("sum", (u,), ()):
            return _d(u, v)
        case Call("mean", (u,), ()):
            return div(_d(u, v), Ref("N"))
    raise NotElementwise(show(tree))


def _d_power(a: Expr, b: Expr, v: str) -> Expr:
    if not _mentions(b, v):  # a**c: c·a**(c−1)·a'
        return mul(mul(b, power(a, sub(b, Num(1.0)))), _d(a, v))
    if not _mentions(a, v):  # c**b: c**b·log(c)·b'
        return mul(mul(BinOp("**", a, b), Call("log", (a,))), _d(b, v))
    inner = add(mul(_d(b, v), Call("log", (a,))), div(mul(b, _d(a, v)), a))
    return mul(BinOp("**", a, b), inner)


def outer_derivative(func: str, u: Expr) -> Expr:
    """f'(u) of a pointwise function: the registry's formula with u for its argument."""
    return simplify(substitute(local_formula(func, 0), {FUNCTIONS[func].args[0]: u}))


@functools.cache
def local_formula(func: str, position: int) -> Expr | None:
    """The registry's local derivative of `func` for the argument at `position`, as a tree
    (helpers such as relu' are Calls); None where no gradient flows."""
    local = FUNCTIONS[func].local_at(position)
    if local is None:
        return None
    return _helpers_as_calls(parse_expression(local.formula, set(HELPERS)).tree)


def _helpers_as_calls(tree: Expr) -> Expr:
    match tree:
        case ModuleCall(name, a):
            return Call(name, (_helpers_as_calls(a),))
        case BinOp(op, a, b):
            return BinOp(op, _helpers_as_calls(a), _helpers_as_calls(b))
        case Neg(a):
            return Neg(_helpers_as_calls(a))
        case Call(func, args, kwargs):
            return Call(func, tuple(_helpers_as_calls(a) for a in args), kwargs)
    return tree


def substitute(tree: Expr, values: dict[str, Expr]) -> Expr:
    """`tree` with each name in `values` replaced by its tree."""
    match tree:
        case Ref(name):
            return values.get(name, tree)
        case BinOp(op, a, b):
            return BinOp(op, substitute(a, values), substitute(b, values))
        case Neg(a):
            return Neg(substitute(a, values))
        case Transpose(a):
            return Transpose(substitute(a, values))
        case ModuleCall(module, a):
            return ModuleCall(module, substitute(a, values))
        case Call(func, args, kwargs):
            return Call(func, tuple(substitute(a, values) for a in args), kwargs)
    return tree


def names_in(tree: Expr) -> set[str]:
    """The names a tree reads."""
    match tree:
        case Ref(name):
            return {name}
        case Neg(a) | Transpose(a) | ModuleCall(_, a):
            return names_in(a)
        case BinOp(_, a, b):
            return names_in(a) | names_in(b)
        case Call(_, args, _):
            return set().union(*(names_in(a) for a in args))
    return set()


def _mentions(tree: Expr, v: str) -> bool:
    match tree:
        case Ref(name):
            return name == v
        case Num():
            return False
        case Neg(a) | Transpose(a) | ModuleCall(_, a):
            return _mentions(a, v)
        case BinOp(_, a, b):
            return _mentions(a, v) or _mentions(b, v)
        case Call(_, args, _):
            return any(_mentions(a, v) for a in args)
    return True  # pragma: no cover


# -- smart constructors: fold numbers and drop 0s and 1s as the tree is built


def _is(tree: Expr, value: float) -> bool:
    return isinstance(tree, Num) and tree.value == value


def neg(a: Expr) -> Expr:
    if isinstance(a, Num):
        return Num(-a.value)
    if isinstance(a, Neg):
        return a.operand
    return Neg(a)


def add(a: Expr, b: Expr) -> Expr:
    if _is(a, 0):
        return b
    if _is(b, 0):
        return a
    if isinstance(a, Num) and isinstance(b, Num):
        return Num(a.value + b.value)
    if a == b:
        return mul(Num(2.0), a)
    if isinstance(b, Num) and b.value < 0:
        return BinOp("-", a, Num(-b.value))
    if isinstance(b, Neg):
        return BinOp("-", a, b.operand)
    return BinOp("+", a, b)


def sub(a: Expr, b: Expr) -> Expr:
    if _is(b, 0):
        return a
    if _is(a, 0):
        return neg(b)
    if isinstance(a, Num) and isinstance(b, Num):
        return Num(a.value - b.value)
    return BinOp("-", a, b)


def _coefficient(tree: Expr) -> tuple[float, Expr | None]:
    """Split a product into its number and the rest: 2·(3·x) → (6, x)."""
    if isinstance(tree, Num):
        return tree.value, None
    if isinstance(tree, Neg):
        c, rest = _coefficient(tree.operand)
        return -c, rest
    if isinstance(tree, BinOp) and tree.op == "*" and isinstance(tree.left, Num):
        c, rest = _coefficient(tree.right)
        return tree.left.value * c, rest
    return 1.0, tree


def _scaled(c: float, rest: Expr | None) -> Expr:
    if rest is None or c == 0:
        return Num(c)
    if c == 1:
        return rest
    if c == -1:
        return neg(rest)
    if c < 0:
        return neg(BinOp("*", Num(-c), rest))
    return BinOp("*", Num(c), rest)


def mul(a: Expr, b: Expr) -> Expr:
    if _is(a, 0) or _is(b, 0):
        return Num(0.0)
    ca, ra = _coefficient(a)
    cb, rb = _coefficient(b)
    if ra is None or rb is None:
        return _scaled(ca * cb, ra if rb is None else rb)
    if ra == rb:
        return _scaled(ca * cb, power(ra, Num(2.0)))
    return _scaled(ca * cb, BinOp("*", ra, rb))


def div(a: Expr, b: Expr) -> Expr:
    if _is(a, 0):
        return Num(0.0)
    if _is(b, 1):
        return a
    if isinstance(b, Num) and b.value != 0:
        c, rest = _coefficient(a)
        folded = c / b.value
        if len(fmt(folded)) <= 6 and float(fmt(folded)) == folded:  # 2x/4 → 0.5x, but keep x/3
            return _scaled(folded, rest)
    if a == b:
        return Num(1.0)
    if isinstance(a, BinOp) and a.op == "/":  # (a/b)/c → a/(b·c)
        return div(a.left, mul(a.right, b))
    return BinOp("/", a, b)


def power(a: Expr, b: Expr) -> Expr:
    if _is(b, 1):
        return a
    if _is(b, 0):
        return Num(1.0)
    if isinstance(a, Num) and isinstance(b, Num):
        try:
            return Num(float(a.value**b.value))
        except (OverflowError, ZeroDivisionError, TypeError):
            pass
    return BinOp("**", a, b)


def simplify(tree: Expr) -> Expr:
    """Rebuild bottom-up through the smart constructors (folds `2 * 2` to 4)."""
    match tree:
        case Neg(a):
            return neg(simplify(a))
        case BinOp(op, a, b):
            a, b = simplify(a), simplify(b)
            return {"+": add, "-": sub, "*": mul, "/": div, "**": power}.get(op, lambda x, y: BinOp(op, x, y))(a, b)
        case Call(func, args, kwargs):
            return Call(func, tuple(simplify(x) for x in args), kwargs)
        case Transpose(a):
            return Transpose(simplify(a))
        case ModuleCall(module, a):
            return ModuleCall(module, simplify(a))
    return tree


def ops_in(tree: Expr, module_types: Mapping[str, str] | None = None) -> list[str]:
    """Names of the ops with a rule in RULES, outermost first, without repeats; a module
    call is named by its type (`module_types`: module name -> type, Linear if not given)."""
    found: list[str] = []

    def walk(t: Expr) -> None:
        match t:
            case Call(func, args, _):
                found.append(func)
                for a in args:
                    walk(a)
            case ModuleCall(module, a):
                found.append((module_types or {}).get(module, "Linear"))
                walk(a)
            case Transpose(a):
                found.append("T")
                walk(a)
            case BinOp(op, a, b):
                if op == "@":
                    found.append("@")
                walk(a)
                walk(b)
            case Neg(a):
                walk(a)

    walk(tree)
    return [op for op in dict.fromkeys(found) if op in RULES]
