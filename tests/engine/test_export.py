"""Exports: JSON (the schema of show --format json), Markdown (the annotated tree), DOT (valid, complete)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from backprop_tui.engine import Session, bundled_presets, load_preset, resolve_preset
from backprop_tui.engine.export import MAX_TREE_DEPTH, to_dot, to_json, to_markdown


def session(name: str) -> Session:
    return Session(load_preset(resolve_preset(name)))


@pytest.mark.parametrize("name", sorted(bundled_presets()))
def test_json_parses_to_the_snapshot(name):
    s = session(name)
    s.step()
    data = json.loads(to_json(s.snapshot, s.loss_history))
    assert set(data) == {"preset", "output", "nodes", "loss_history", "nonfinite"}
    assert data["nonfinite"] is False
    assert data["loss_history"] == s.loss_history
    assert [n["name"] for n in data["nodes"]] == [n.name for n in s.snapshot.nodes]
    for n in data["nodes"]:
        node = s.snapshot.node(n["name"])
        assert set(n) == {"name", "expr", "kind", "shape", "value", "grad", "requires_grad", "grad_fn", "inputs"}
        np.testing.assert_array_equal(np.array(n["value"], dtype=node.value.dtype), node.value)
        assert (n["grad"] is None) == (node.grad is None)
        if node.grad is not None:
            np.testing.assert_array_equal(np.array(n["grad"], dtype=np.float32), node.grad)


def test_markdown_is_the_annotated_tree_then_the_table():
    s = session("gradient_accumulation")
    text = to_markdown(s.snapshot, s.loss_history)
    tree = text.split("## Nodes")[0]
    assert tree.splitlines()[4:9] == [
        "- `f` = 8 · ∂f/∂f = 1 · `p + x` · df/dx = df/dp * dp/dx + 1 = y + 1",
        "  - `p` = 6 · ∂f/∂p = 1 · `x * y`",
        "    - `x` = 2 · ∂f/∂x = 4 · parameter, requires grad · Used twice: its grad is the sum over both consumers.",
        "    - `y` = 3 · ∂f/∂y = 2 · parameter, requires grad",
        "  - `x` (shown above)",
    ]
    assert "| `x` | parameter |  | scalar | 2 | 4 |  |" in text


def test_markdown_says_no_grad_and_keeps_the_loss_history():
    s = session("linear_regression")
    s.step()
    text = to_markdown(s.snapshot, s.loss_history)
    assert re.search(r"^ *- `x` = -3 · no grad · input · Input feature;", text, re.M)
    assert "Loss history: 84.5, 68.445" in text


def test_markdown_of_a_deep_chain_caps_the_indentation():
    s = session("deep_chain")
    lines = to_markdown(s.snapshot, s.loss_history).splitlines()
    items = [line for line in lines if line.lstrip().startswith("- `")]
    assert len(items) == 505 + 2 * 249  # every node once; w and b again in each later layer
    assert max(len(line) - len(line.lstrip()) for line in items) == 2 * MAX_TREE_DEPTH


def _dot_statements(text: str) -> tuple[set[str], set[tuple[str, str]]]:
    """A structural reading of DOT: quoted strings closed, braces balanced, nodes and edges."""
    assert text.startswith("digraph backprop {")
    depth = 0
    in_string = False
    escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            assert depth >= 0
    assert depth == 0 and not in_string
    quoted = r'"((?:[^"\\]|\\.)*)"'
    nodes = set(re.findall(rf"^\s*{quoted} \[label=", text, re.M))
    edges = set(re.findall(rf"^\s*{quoted} -> {quoted};$", text, re.M))
    return nodes, edges


@pytest.mark.parametrize("name", sorted(bundled_presets()))
def test_dot_is_structurally_valid_with_every_node_and_edge(name):
    s = session(name)
    text = to_dot(s.snapshot)
    nodes, edges = _dot_statements(text)
    assert nodes == {n.name for n in s.snapshot.nodes}
    assert edges == {(i, n.name) for n in s.snapshot.nodes for i in n.inputs}
    try:
        import graphviz  # optional: a real parser when it is installed
    except ImportError:
        return
    graphviz.Source(text).pipe(format="svg")  # pragma: no cover


def test_dot_labels_hold_values_and_grads():
    s = session("scalar_chain")
    text = to_dot(s.snapshot)
    assert '"g" [label="g = h**3 + 1\\nvalue 9\\n∂f/∂g 18"' in text
    assert '"x" [label="x (input)\\nvalue -3\\n∂f/∂x 216"' in text
    lr = to_dot(session("linear_regression").snapshot)
    assert re.search(r'"y" \[label="y \(target\)\\nvalue 5\\n∂J/∂y no grad", [^\n]*dashed', lr)


def test_dot_escapes_quotes_and_backslashes_in_titles():
    s = Session(load_preset(resolve_preset("scalar_chain")))
    snap = s.snapshot
    from dataclasses import replace

    odd = replace(snap, title='say "hi" \\ {x}')
    nodes, _ = _dot_statements(to_dot(odd))
    assert 'label="say \\"hi\\" \\\\ {x}";' in to_dot(odd)
    assert nodes == {"x", "h", "g", "f"}
