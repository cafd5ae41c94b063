"""Per-sample gradients from the graph run on one sample at a time, and how the batch combines them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from backprop_tui.engine import Session, load_preset, resolve_preset
from backprop_tui.engine.analysis.live import AnalysisError
from backprop_tui.engine.analysis.per_sample import per_sample


def session(name: str) -> Session:
    return Session(load_preset(resolve_preset(name)))


@pytest.mark.parametrize(
    ("name", "combine", "size"), [("simple_nn", "sum", 2), ("dead_relu", "mean", 3), ("softmax_classifier", "mean", 4)]
)
def test_shares_add_up_to_the_batch_grad(name, combine, size):
    s = session(name)
    r = per_sample(s)
    assert (r.combine, r.batch_size) == (combine, size)
    assert r.weight == (1.0 if combine == "sum" else 1.0 / size)
    assert r.batch_loss == pytest.approx(r.weight * sum(r.sample_losses), rel=1e-5)
    assert set(r.leaves) == {leaf.name for leaf in s.preset.leaves if leaf.role == "parameter"}
    for leaf in r.leaves.values():
        np.testing.assert_array_equal(leaf.batch_grad, s.snapshot.node(leaf.name).grad)
        assert leaf.sample_grads.shape == (size, *leaf.batch_grad.shape)
        np.testing.assert_allclose(leaf.shares.sum(axis=0), leaf.batch_grad, rtol=1e-5, atol=1e-7)


def test_softmax_sample_grads_match_plain_torch_on_each_sample():
    s = session("softmax_classifier")
    r = per_sample(s)
    X = torch.tensor(s.snapshot.node("X").value, dtype=torch.float64)
    classes = torch.tensor(s.snapshot.node("classes").value)
    for i in range(4):
        W = torch.tensor(s.snapshot.node("classifier.weight").value, dtype=torch.float64, requires_grad=True)
        b = torch.tensor(s.snapshot.node("classifier.bias").value, dtype=torch.float64, requires_grad=True)
        loss = F.cross_entropy(X[i : i + 1] @ W.T + b, classes[i : i + 1])
        loss.backward()
        assert r.sample_losses[i] == pytest.approx(loss.item(), rel=1e-6)
        np.testing.assert_allclose(r.leaves["classifier.weight"].sample_grads[i], W.grad.numpy(), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(r.leaves["classifier.bias"].shares[i], b.grad.numpy() / 4, rtol=1e-5, atol=1e-7)


def test_a_dead_sample_contributes_nothing():
    # dead_relu: sample 1 has prediction 1 = target exactly (sigmoid saturated): zero loss, zero grad
    r = per_sample(session("dead_relu"))
    assert r.sample_losses[1] == 0.0
    assert not r.leaves["out.weight"].sample_grads[1].any()
    assert "mean of the 3 per-sample losses" in r.explanation


def test_presets_without_a_batch_are_refused():
    with pytest.raises(AnalysisError, match="no batch"):
        per_sample(session("scalar_chain"))


def test_analyses_past_their_cost_say_too_large_and_never_run(monkeypatch):
    """X and W both [1000, 1000]: W's per-sample gradients would be 1000 x 1,000,000 numbers
    (7 GB with their shares), and gradcheck 513 passes of 10^9 multiply-adds. Each says
    "too large to compute here" before any pass runs."""
    from backprop_tui.engine import parse_preset
    from backprop_tui.engine.analysis import gradcheck as gradcheck_module
    from backprop_tui.engine.analysis import live, loss_slice as slice_module, per_sample as per_sample_module

    text = (
        'output = "J"\n[tensors.X]\nrole = "input"\nshape = [1000, 1000]\ninit = "randn"\n'
        '[tensors.W]\nrole = "parameter"\nshape = [1000, 1000]\ninit = "randn"\nseed = 1\n'
        '[[steps]]\nname = "J"\nexpr = "mean(X @ W)"\n'
    )
    state = live.FrozenState.of(Session(parse_preset(text)))

    def never(*args, **kwargs):
        raise AssertionError("the graph ran")

    for module in (per_sample_module, gradcheck_module, slice_module):
        monkeypatch.setattr(module, "run_live", never)
    with pytest.raises(live.AnalysisError) as caught:
        per_sample_module.per_sample(state, ["W"])
    assert str(caught.value) == (
        "too large to compute here: the per-sample gradients (1000 samples × W) holds 2,000,000,000 numbers; "
        "the limit is 100,000,000"
    )
    with pytest.raises(live.AnalysisError) as caught:
        gradcheck_module.gradcheck(state)
    assert str(caught.value) == (
        "too large to compute here: checking 256 elements against finite differences takes 513 passes of about "
        "1,000,000,000 operations each; the limit is 50,000,000,000 in all"
    )
