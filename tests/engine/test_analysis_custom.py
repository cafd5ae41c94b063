"""Your own expression through the same safe parser as preset files."""

from __future__ import annotations

import numpy as np
import pytest

from backprop_tui.engine import PresetError, Session
from backprop_tui.engine.analysis.custom import custom_preset, custom_toml, free_names
from backprop_tui.engine.preset import parse_preset


def test_the_seeds_expression_becomes_a_chain_of_steps():
    p = custom_preset("((x+5)**3+1)**2", {"x": -3})
    assert [(s.name, s.expr.text) for s in p.steps] == [
        ("t1", "x + 5"),
        ("t2", "t1**3"),
        ("t3", "t2 + 1"),
        ("f", "t3**2"),
    ]
    snap = Session(p).snapshot
    assert snap.loss == 81.0 and float(snap.node("x").grad) == 216.0
    assert [float(snap.node(n).grad) for n in ("t1", "t2", "t3")] == [216.0, 18.0, 18.0]


def test_assignments_name_the_steps_and_the_last_is_the_output():
    p = custom_preset("h = x + 5; g = h**3 + 1\nf = g**2", {"x": -3.0})
    assert [s.name for s in p.steps] == ["h", "g", "f"] and p.output == "f"
    snap = Session(p).snapshot
    assert [float(snap.node(n).grad) for n in ("x", "h", "g")] == [216.0, 216.0, 18.0]


def test_unsplit_expression_is_one_step():
    p = custom_preset("x * y + x", {"x": 2, "y": 3}, split=False)
    assert [(s.name, s.expr.text) for s in p.steps] == [("f", "x * y + x")]
    assert float(Session(p).snapshot.node("x").grad) == 4.0


def test_free_names_and_tensor_values():
    assert free_names("h = w * x; J = sum(h) + w2") == ("w", "x", "w2")
    p = custom_preset("sum(w * x)", {"w": [1.0, 2.0], "x": [3.0, 4.0]})
    snap = Session(p).snapshot
    assert snap.loss == 11.0
    np.testing.assert_array_equal(snap.node("w").grad, [3.0, 4.0])


def test_the_toml_is_a_preset_file():
    text = custom_toml("((x+5)**3+1)**2", {"x": -3})
    assert parse_preset(text).output == "f"


@pytest.mark.parametrize(
    ("text", "values", "message"),
    [
        ("x +", {"x": 1}, "syntax error"),
        ("__import__('os').system('true')", {}, "called, by name"),
        ("x.__class__", {"x": 1}, "attribute"),
        ("x * y", {"x": 1}, "give a starting value for y"),
        ("x", {"x": [1.0, 2.0]}, "must be a scalar"),
        ("a = x; b", {"x": 1}, "give a starting value for b"),
        ("x; y", {"x": 1, "y": 1}, "must be an assignment"),
        ("", {}, "type an expression"),
        ("x * 2", {"x": float("nan")}, "finite"),
        ("x * 2", {"x": "3"}, "number"),
    ],
)
def test_bad_input_is_one_clear_error(text, values, message):
    with pytest.raises(PresetError, match=message) as info:
        custom_preset(text, values)
    assert "\n" not in str(info.value)
