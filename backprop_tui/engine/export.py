"""Snapshots as data: the JSON schema of `show --format json` (other formats build on it)."""

from __future__ import annotations

import json
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


def to_json(snapshot: Snapshot, loss_history: list[float]) -> str:
    # nan/inf (after a computation went bad) are written as NaN/Infinity, which Python reads back
    return json.dumps(snapshot_to_dict(snapshot, loss_history), indent=2, allow_nan=True)


def to_markdown(snapshot: Snapshot, loss_history: list[float]) -> str:
    """A Markdown table of the nodes, for notes."""
    from backprop_tui.engine.format import format_array, format_shape

    lines = [
        f"# {snapshot.title}",
        "",
        f"Output `{snapshot.output}` = {format_array(snapshot.node(snapshot.output).value)}",
        "",
        "| node | kind | expression | shape | value | grad | grad_fn |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in snapshot.nodes:
        grad = "no grad" if n.grad is None else format_array(n.grad)
        cells = [f"`{n.name}`", n.kind, f"`{n.expr}`" if n.expr else "", format_shape(n.shape),
                 format_array(n.value), grad, n.grad_fn or ""]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if len(loss_history) > 1:
        lines += ["", "Loss history: " + ", ".join(f"{x:.6g}" for x in loss_history)]
    return "\n".join(lines) + "\n"


def to_dot(snapshot: Snapshot) -> str:
    """Graphviz DOT: one box per node with its value and grad, edges in the forward direction."""
    from backprop_tui.engine.format import format_array

    def quote(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["digraph backprop {", "  rankdir=LR;", "  node [shape=record, fontname=monospace];"]
    for n in snapshot.nodes:
        grad = "no grad" if n.grad is None else format_array(n.grad, max_items=3)
        label = f"{n.name} | {n.expr or n.kind} | value {format_array(n.value, max_items=3)} | grad {grad}"
        label = label.replace("{", "\\{").replace("}", "\\}").replace("<", "\\<").replace(">", "\\>")
        lines.append(f"  {quote(n.name)} [label={quote(label)}];")
    for n in snapshot.nodes:
        for i in n.inputs:
            lines.append(f"  {quote(i)} -> {quote(n.name)};")
    lines.append("}")
    return "\n".join(lines) + "\n"
