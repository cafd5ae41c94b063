"""Snapshots as data: the JSON schema of `show --format json` (other formats build on it)."""

from __future__ import annotations

import json
import math
from typing import Any

from backprop_tui.engine.snapshot import Node, Snapshot


def node_to_dict(node: Node) -> dict[str, Any]:
    return {
        "name": node.name,
        "expr": node.expr,
        "kind": node.kind,
        "shape": list(node.shape),
        "value": node.value.tolist(),
        "grad": None if node.grad is None else node.grad.tolist(),
        "requires_grad": node.requires_grad,
        "grad_fn": node.grad_fn,
        "inputs": list(node.inputs),
    }


def snapshot_to_dict(snapshot: Snapshot, loss_history: list[float]) -> dict[str, Any]:
    return {
        "preset": snapshot.preset,
        "output": snapshot.output,
        "nodes": [node_to_dict(n) for n in snapshot.nodes],
        "loss_history": [float(x) for x in loss_history],
    }


NONFINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def strict_numbers(data: Any) -> tuple[Any, bool]:
    """`data` with every NaN or infinity replaced by the string "NaN", "Infinity" or "-Infinity"
    (RFC 8259 JSON has no such numbers, and strict parsers refuse Python's bare NaN), and
    whether any was found."""
    if isinstance(data, float) and not math.isfinite(data):
        return NONFINITE[repr(data)], True
    if isinstance(data, list):
        items = [strict_numbers(x) for x in data]
        return [x for x, _ in items], any(found for _, found in items)
    if isinstance(data, dict):
        items = {k: strict_numbers(v) for k, v in data.items()}
        return {k: x for k, (x, _) in items.items()}, any(found for _, found in items.values())
    return data, False


def to_json(snapshot: Snapshot, loss_history: list[float]) -> str:
    """Strict JSON; after a computation went bad, "nonfinite" is true and the bad numbers are strings."""
    data, nonfinite = strict_numbers(snapshot_to_dict(snapshot, loss_history))
    data["nonfinite"] = nonfinite
    return json.dumps(data, indent=2, allow_nan=False)


# ---------------------------------------------------------------- Markdown

MAX_TREE_DEPTH = 16  # deeper nodes are listed at this depth, so a 500-step chain stays readable


def to_markdown(snapshot: Snapshot, loss_history: list[float]) -> str:
    """Notes: the annotated tree (output at the top, each node's inputs below it), then a table.

    Each tree line holds the node's value, its gradient ∂output/∂node and its expression;
    a node reached a second time (a variable used twice) is named and not expanded again.
    """
    from backprop_tui.engine.format import format_array

    out = snapshot.output
    lines = [
        f"# {snapshot.title}",
        "",
        f"Output `{out}` = {format_array(snapshot.node(out).value)}. Each node: value, gradient ∂{out}/∂node, "
        "expression; below it, the nodes it is computed from.",
        "",
    ]
    lines += _markdown_tree(snapshot)
    lines += [
        "",
        "## Nodes",
        "",
        "| node | kind | expression | shape | value | grad | grad_fn |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in snapshot.nodes:
        lines.append("| " + " | ".join(_cell(c) for c in _table_cells(n)) + " |")
    if len(loss_history) > 1:
        lines += ["", "Loss history: " + ", ".join(f"{x:.6g}" for x in loss_history)]
    if snapshot.warnings:
        lines += [""] + [f"> warning: {w}" for w in snapshot.warnings]
    return "\n".join(lines) + "\n"


def _markdown_tree(snapshot: Snapshot) -> list[str]:
    from backprop_tui.engine.format import format_array

    out = snapshot.output
    lines: list[str] = []
    shown: set[str] = set()
    stack = [(out, 0)]  # iterative: a deep chain must not exhaust Python's recursion limit
    while stack:
        name, depth = stack.pop()
        node = snapshot.node(name)
        indent = "  " * min(depth, MAX_TREE_DEPTH)
        if name in shown:
            lines.append(f"{indent}- `{name}` (shown above)")
            continue
        shown.add(name)
        grad = "no grad" if node.grad is None else f"∂{out}/∂{name} = {format_array(node.grad)}"
        parts = [f"`{name}` = {format_array(node.value)}", grad]
        if node.expr:
            parts.append(f"`{node.expr}`")
        else:
            parts.append(node.kind + (", requires grad" if node.requires_grad else ""))
        if node.note:
            parts.append(node.note.replace("\n", " "))
        lines.append(f"{indent}- " + " · ".join(parts))
        stack.extend((child, depth + 1) for child in reversed(node.inputs))
    return lines


def _table_cells(n: Node) -> list[str]:
    from backprop_tui.engine.format import format_array, format_shape

    grad = "no grad" if n.grad is None else format_array(n.grad)
    return [
        f"`{n.name}`",
        n.kind,
        f"`{n.expr}`" if n.expr else "",
        format_shape(n.shape),
        format_array(n.value),
        grad,
        n.grad_fn or "",
    ]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# ---------------------------------------------------------------- Graphviz DOT

_DOT_STYLE = {
    "input": 'shape=box, style="rounded,filled", fillcolor="#e8e8e8"',
    "target": 'shape=box, style="rounded,filled", fillcolor="#e8e8e8"',
    "parameter": 'shape=box, style="rounded,filled", fillcolor="#d6e9ff"',
    "intermediate": 'shape=box, style="rounded"',
    "output": 'shape=box, style="rounded,filled,bold", fillcolor="#ffe6b3"',
}


def dot_quote(text: str) -> str:
    """A DOT double-quoted string; in labels "\\n" (kept as is) breaks the line."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(snapshot: Snapshot) -> str:
    """Graphviz DOT: one box per node with its value and grad, edges in the forward direction.

    Module parameters are grouped in a cluster per module; nodes without a gradient are
    drawn dashed. Render with `dot -Tsvg graph.dot > graph.svg`.
    """
    from backprop_tui.engine.format import format_array, format_shape

    out = snapshot.output
    lines = [
        "digraph backprop {",
        f"  label={dot_quote(snapshot.title)};",
        "  labelloc=t;",
        "  rankdir=LR;",
        '  node [fontname="monospace", fontsize=10];',
    ]
    modules: dict[str, list[str]] = {}
    for n in snapshot.nodes:
        head = f"{n.name} = {n.expr}" if n.expr else f"{n.name} ({n.kind})"
        shape = "" if not n.shape else f" [{format_shape(n.shape)}]"
        grad = "no grad" if n.grad is None else format_array(n.grad, max_items=3)
        label = f"{head}\nvalue{shape} {format_array(n.value, max_items=3)}\n∂{out}/∂{n.name} {grad}"
        style = _DOT_STYLE[n.kind] + (", color=gray50, fontcolor=gray35" if n.grad is None else "")
        if n.grad is None:
            style = style.replace('style="rounded', 'style="rounded,dashed')
        statement = f"{dot_quote(n.name)} [label={dot_quote(label)}, {style}];"
        if n.module:
            modules.setdefault(n.module, []).append(statement)
        else:
            lines.append("  " + statement)
    for module, statements in modules.items():
        lines.append(f"  subgraph {dot_quote('cluster_' + module)} {{")
        lines.append(f"    label={dot_quote(module)}; style=dashed; color=gray60;")
        lines += ["    " + s for s in statements]
        lines.append("  }")
    for n in snapshot.nodes:
        for i in n.inputs:
            lines.append(f"  {dot_quote(i)} -> {dot_quote(n.name)};")
    lines.append("}")
    return "\n".join(lines) + "\n"
