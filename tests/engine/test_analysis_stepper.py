"""Step-through: the forward pass in order, the backward pass in reverse topological order."""

from __future__ import annotations

import numpy as np
import pytest

from backprop_tui.engine import Session, bundled_presets, load_preset, resolve_preset
from backprop_tui.engine.analysis.stepper import backward_steps, forward_steps


def session(name: str) -> Session:
    return Session(load_preset(resolve_preset(name)))


def test_scalar_chain_backward_multiplies_incoming_by_local():
    steps = backward_steps(session("scalar_chain"))
    assert [s.node for s in steps] == ["f", "g", "h", "x"]
    pushes = [(p.input, float(p.incoming), p.local.value, float(p.contribution)) for s in steps for p in s.pushes]
    assert pushes == [("g", 1.0, 18.0, 18.0), ("h", 18.0, 12.0, 216.0), ("x", 216.0, 1.0, 216.0)]
    assert steps[1].pushes[0].text == "g → h: 18 × 12 = 216"
    assert steps[-1].text.startswith("x.grad = 216")


def test_accumulation_is_visible_step_by_step():
    s = session("gradient_accumulation")
    steps = backward_steps(s)
    assert [st.node for st in steps] == ["f", "p", "y", "x"]
    to_x = [p for st in steps for p in st.pushes if p.input == "x"]
    assert [(float(p.contribution), float(p.accumulated), p.complete) for p in to_x] == [
        (1.0, 1.0, False),
        (3.0, 4.0, True),
    ]
    assert "(more to come)" in to_x[0].text and "x has 4 so far" in to_x[1].text
    assert steps[-1].text.startswith("x.grad = 1 + 3 = 4")


@pytest.mark.parametrize("name", sorted(set(bundled_presets()) - {"deep_chain"}))
def test_backward_order_is_reverse_topological_and_contributions_rebuild_every_grad(name):
    s = session(name)
    steps = backward_steps(s)
    position = {st.node: i for i, st in enumerate(steps)}
    assert steps[0].node == s.snapshot.output
    for st in steps:
        node = s.snapshot.node(st.node)
        np.testing.assert_array_equal(st.grad, node.grad)
        for consumer in node.consumers:
            if consumer in position:
                assert position[consumer] < position[st.node]  # every consumer has already sent its part
    totals = {}
    for st in steps:
        for p in st.pushes:
            totals[p.input] = totals.get(p.input, 0) + p.contribution.astype(np.float64)
            if p.incoming.size == 1 and p.local.value is not None:
                assert float(p.contribution) == pytest.approx(float(p.incoming) * p.local.value, rel=1e-6)
    for name_, total in totals.items():
        grad = s.snapshot.node(name_).grad
        np.testing.assert_allclose(total, grad, rtol=1e-5, atol=1e-7 * max(1.0, float(np.abs(grad).max())))


def test_nodes_without_gradient_are_passed_over():
    steps = backward_steps(session("softmax_classifier"))
    assert [s.node for s in steps] == ["loss", "logits", "classifier.bias", "classifier.weight"]


def test_forward_steps_substitute_scalar_values():
    steps = forward_steps(session("scalar_chain"))
    assert [s.text for s in steps] == [
        "x = -3 (input, requires grad)",
        "h = x + 5 = (−3) + 5 = 2",
        "g = h³ + 1 = 2³ + 1 = 9",
        "f = g² = 9² = 81",
    ]


def test_forward_values_are_the_snapshots():
    s = session("simple_nn")
    steps = forward_steps(s)
    assert [st.node for st in steps] == [n.name for n in s.snapshot.nodes]
    for st in steps:
        np.testing.assert_array_equal(st.value, s.snapshot.node(st.node).value)
    assert steps[-1].text == "J = sum((A3 − Y)²)/(2·2) = 0.0130999"
