"""docs/presets.md's table of functions, written from the registry.

`python -m backprop_tui.engine.function_docs` prints it; tests/cli/test_docs.py checks
that the page holds exactly this table.
"""

from __future__ import annotations

from backprop_tui.engine.analysis.symbolic import local_formula, show
from backprop_tui.engine.functions import FUNCTIONS, Function

HEADER = (
    "| function | keywords | torch | meaning | local derivative |\n"
    "|---|---|---|---|---|"
)


def keywords_cell(fn: Function) -> str:
    parts = []
    for name, kind in fn.keywords.items():
        text = f"`{name}=`"
        if name in fn.defaults:
            text += f" (default `{fn.defaults[name]}`)"
        elif isinstance(kind, tuple):
            text += " (" + " or ".join(f"`{v!r}`" for v in kind) + f", default `{kind[0]!r}`)"
        parts.append(text)
    return ", ".join(parts)


def derivative_cell(fn: Function) -> str:
    if fn.int_result:
        return "none: the result is an int tensor"
    parts = []
    for position, arg in enumerate(fn.args):
        tree = local_formula(fn.name, position)
        if tree is None:
            parts.append(f"∂/∂{arg}: none ({arg} is an int tensor)")
            continue
        text = f"∂/∂{arg}: `{show(tree, display=True)}`"
        words = fn.local_at(position).words
        parts.append(f"{text} ({words})" if words else text)
    return "; ".join(parts)


def function_row(fn: Function) -> str:
    cells = [f"`{fn.signature}`", keywords_cell(fn), f"`{fn.torch}`", fn.meaning, derivative_cell(fn)]
    return "| " + " | ".join(cells) + " |"


def function_table() -> str:
    return "\n".join([HEADER, *(function_row(fn) for fn in FUNCTIONS.values())])


if __name__ == "__main__":
    print(function_table())
