"""Your own expression: typed text and starting values in, a Preset out.

The text goes through exactly the path a preset file takes: we build the TOML a user
could have written (one tensor per free name, one step per operation or per typed
assignment), write it with tomli_w and load it with `preset.parse_preset`, so the same
safe parser and the same validation apply, and the result can be saved as it is.

Two forms are accepted:
  ((x+5)**3+1)**2                  one expression; split into one step per operation
  h = x + 5; g = h**3 + 1; f = g**2  assignments (";" or new lines); the last is the output
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import tomli_w

from backprop_tui.engine.analysis.symbolic import show
from backprop_tui.engine.errors import PresetError
from backprop_tui.engine.expr import BinOp, Call, Expr, ModuleCall, Neg, Num, Ref, Transpose, parse_expression
from backprop_tui.engine.limits import MAX_STEPS
from backprop_tui.engine.preset import Preset, parse_preset

SOURCE = "your expression"
_ASSIGNMENT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)(.*)$", re.S)


def parse_statements(text: str) -> list[tuple[str | None, str]]:
    """[(name or None, expression text)]; None for a bare expression (allowed last only)."""
    if not isinstance(text, str) or not text.strip():
        raise PresetError(f"{SOURCE}: type an expression, e.g. ((x+5)**3+1)**2")
    parts = [p for p in re.split(r"[;\n]", text) if p.strip()]
    statements: list[tuple[str | None, str]] = []
    for i, part in enumerate(parts):
        match = _ASSIGNMENT.match(part)
        if match:
            statements.append((match.group(1), match.group(2).strip()))
        elif i == len(parts) - 1:
            statements.append((None, part.strip()))
        else:
            raise PresetError(
                f"{SOURCE}: {part.strip()!r} must be an assignment, e.g. h = x + 5; "
                "only the last line may be a bare expression"
            )
    if len(statements) > MAX_STEPS:
        raise PresetError(f"{SOURCE}: {len(statements)} statements; the limit is {MAX_STEPS}")
    return statements


def free_names(text: str) -> tuple[str, ...]:
    """The names the text reads but does not assign: each needs a starting value."""
    assigned: set[str] = set()
    free: list[str] = []
    for name, expr_text in parse_statements(text):
        for ref in parse_expression(expr_text).names:
            if ref not in assigned and ref not in free:
                free.append(ref)
        if name is not None:
            assigned.add(name)
    return tuple(free)


def custom_document(
    text: str, values: Mapping[str, Any], split: bool = True, title: str | None = None
) -> dict[str, Any]:
    """The preset as TOML data: what a user would write in a file for this expression."""
    try:
        return _document(text, values, split, title)
    except PresetError as exc:
        message = str(exc)
        raise PresetError(message if message.startswith(SOURCE) else f"{SOURCE}: {message}") from None


def _document(text: str, values: Mapping[str, Any], split: bool, title: str | None) -> dict[str, Any]:
    statements = parse_statements(text)
    names = free_names(text)
    missing = [n for n in names if n not in values]
    if missing:
        raise PresetError(f"{SOURCE}: give a starting value for {', '.join(missing)}")
    taken = set(names) | {n for n, _ in statements if n is not None}
    steps: list[dict[str, str]] = []
    for i, (name, expr_text) in enumerate(statements):
        last = i == len(statements) - 1
        if name is None:
            name = _fresh("f", taken) if "f" in taken else "f"
            taken.add(name)
        tree = parse_expression(expr_text).tree
        if split and len(statements) == 1:
            steps += _split(tree, name, taken)
        else:
            steps.append({"name": name, "expr": expr_text})
        if last:
            output = name
    tensors = {n: {"role": "parameter", "value": _plain(values[n], n)} for n in names}
    return {
        "name": "custom",
        "title": title or text.strip().replace("\n", "; "),
        "description": "Typed in the explorer.",
        "output": output,
        "tensors": tensors,
        "steps": steps,
    }


def custom_toml(text: str, values: Mapping[str, Any], split: bool = True, title: str | None = None) -> str:
    return tomli_w.dumps(custom_document(text, values, split, title))


def custom_preset(text: str, values: Mapping[str, Any], split: bool = True, title: str | None = None) -> Preset:
    """A Preset for the typed text, validated by parse_preset like any preset file."""
    return parse_preset(custom_toml(text, values, split, title), source=SOURCE, default_name="custom")


# ---------------------------------------------------------------- splitting


def _split(tree: Expr, output: str, taken: set[str]) -> list[dict[str, str]]:
    """One step per operation that reads a name, innermost first: x+5, then t1**3, ..."""
    steps: list[dict[str, str]] = []

    def visit(node: Expr, final: bool) -> Expr:
        match node:
            case BinOp(op, a, b):
                rebuilt: Expr = BinOp(op, visit(a, False), visit(b, False))
            case Neg(a):
                rebuilt = Neg(visit(a, False))
            case Transpose(a):
                rebuilt = Transpose(visit(a, False))
            case Call(func, args, kwargs):
                rebuilt = Call(func, tuple(visit(x, False) for x in args), kwargs)
            case ModuleCall(module, a):
                rebuilt = ModuleCall(module, visit(a, False))
            case _:
                return node  # a name or a number
        if not final and not _reads_name(rebuilt):
            return rebuilt  # 2 * 2 stays inside its parent
        name = output if final else _fresh("t", taken)
        taken.add(name)
        steps.append({"name": name, "expr": show(rebuilt)})
        return Ref(name)

    if isinstance(tree, (Ref, Num)):
        return [{"name": output, "expr": show(tree)}]
    visit(tree, True)
    return steps


def _reads_name(tree: Expr) -> bool:
    match tree:
        case Ref():
            return True
        case Num():
            return False
        case BinOp(_, a, b):
            return _reads_name(a) or _reads_name(b)
        case Neg(a) | Transpose(a) | ModuleCall(_, a):
            return _reads_name(a)
        case Call(_, args, _):
            return any(_reads_name(a) for a in args)
    return False


def _fresh(prefix: str, taken: set[str]) -> str:
    k = 1
    while f"{prefix}{k}" in taken:
        k += 1
    return f"{prefix}{k}"


def _plain(value: Any, name: str) -> Any:
    """A number or nested list of numbers, as TOML takes it (parse_preset checks the rest)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, bool) or not isinstance(value, (int, float, list)):
        raise PresetError(f"{SOURCE}: the value of {name} must be a number or a nested list of numbers")
    return value
