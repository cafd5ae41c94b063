"""Contributions: each consumer's vector-Jacobian product, and their sum equal to the grad."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backprop_tui.engine import Session, bundled_presets, load_preset, resolve_preset
from backprop_tui.engine.analysis.contributions import contributions, node_contributions


def session(name: str) -> Session:
    return Session(load_preset(resolve_preset(name)))


@pytest.mark.parametrize("name", sorted(bundled_presets()))
def test_contributions_sum_to_the_grad_on_every_bundled_preset(name):
    s = session(name)
    parts = contributions(s)
    assert list(parts) == [n.name for n in s.snapshot.nodes]
    split_somewhere = False
    for node in s.snapshot.nodes:
        c = parts[node.name]
        if node.grad is None:
            assert c.grad is None and c.total is None and c.reason
            continue
        np.testing.assert_allclose(c.grad, node.grad, rtol=1e-6, atol=0)
        if node.name == s.snapshot.output:
            assert c.contributions == () and float(c.total) == 1.0
            continue
        assert c.contributions, node.name
        assert {p.consumer for p in c.contributions} <= set(node.consumers)
        for p in c.contributions:
            assert p.value.shape == node.grad.shape
        np.testing.assert_allclose(c.total, node.grad, rtol=1e-5, atol=1e-7 * max(1.0, float(np.abs(node.grad).max())))
        split_somewhere |= c.is_accumulated
    if name in ("gradient_accumulation", "deep_chain"):
        assert split_somewhere


def test_a_variable_used_twice_gets_y_from_p_and_1_from_f():
    s = session("gradient_accumulation")
    s.set_element("y", (), -2.5)
    c = node_contributions(s, "x")
    assert [(p.consumer, float(p.value)) for p in c.contributions] == [("p", -2.5), ("f", 1.0)]
    assert float(c.total) == float(s.snapshot.node("x").grad) == -1.5


def test_a_shared_weight_gets_one_part_per_layer_matching_plain_torch():
    # deep_chain: a_k = w * h_(k-1) + b, h_k = tanh(a_k). The part from a_k is h_(k-1) * dJ/da_k.
    s = session("deep_chain")
    c = node_contributions(s, "w")
    assert len(c.contributions) == 250
    w = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(0.0, dtype=torch.float64)
    h = torch.tensor(1.0, dtype=torch.float64)
    inputs, pre = [], []
    for _ in range(250):
        inputs.append(h)
        a = w * h + b
        a.retain_grad()
        pre.append(a)
        h = torch.tanh(a)
    ((h - 1.0) ** 2 / 2).backward()
    expected = [float(x.detach() * a.grad) for x, a in zip(inputs, pre)]
    got = [float(p.value) for p in c.contributions]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-9)
    assert got[0] == pytest.approx(-0.00037818908, rel=1e-4)  # the first layer adds almost nothing
    np.testing.assert_allclose(float(c.total), float(w.grad), rtol=1e-4)


def test_tensor_contributions_are_vector_jacobian_products():
    # simple_nn: A1 feeds only Z2 = A1 W2^T + b2, so its part is dJ/dZ2 @ W2.
    s = session("simple_nn")
    c = node_contributions(s, "A1")
    (part,) = c.contributions
    expected = s.snapshot.node("Z2").grad @ s.snapshot.node("linear2.weight").value
    np.testing.assert_allclose(part.value, expected, rtol=1e-6)


def test_nodes_without_gradient_say_why():
    s = session("softmax_classifier")
    parts = contributions(s)
    assert "class indices" in parts["classes"].reason
    assert "does not require grad" in parts["X"].reason
    assert "never reaches" in parts["probs"].reason  # computed for reading, not used by the loss
    assert [p.consumer for p in parts["logits"].contributions] == ["loss"]
