"""makemore_backprop: Karpathy's hand-written cross-entropy equals torch's, every step is
shown with its value and gradient, and the embedding's gradient accumulates repeated picks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from backprop_tui.cli import main
from backprop_tui.engine import BackpropError, Session
from engine_support import bundled

STEPS = (
    "emb embcat hprebn bnmeani bndiff bndiff2 bnvar bnvar_inv bnraw hpreact h logits "
    "logit_maxes norm_logits counts counts_sum counts_sum_inv probs logprobs loss"
).split()


def test_the_notebooks_twenty_steps_with_its_names_and_sizes():
    preset = bundled("makemore_backprop")
    assert [s.name for s in preset.steps] == STEPS
    shapes = preset.shapes
    assert shapes["Xb"] == (32, 3) and shapes["Yb"] == (32,)
    assert shapes["C"] == (27, 10) and shapes["emb"] == (32, 3, 10) and shapes["embcat"] == (32, 30)
    assert shapes["W1"] == (30, 64) and shapes["logits"] == (32, 27) and shapes["logit_maxes"] == (32, 1)
    assert preset.leaf("Xb").dtype == "int" and int(preset.leaf("Xb").initial.max()) < 27


def test_loss_equals_torch_cross_entropy_to_float32_rounding():
    snap = Session(bundled("makemore_backprop")).snapshot
    logits = torch.tensor(snap.node("logits").value)
    yb = torch.tensor(snap.node("Yb").value)
    expected = F.cross_entropy(logits, yb).item()
    assert abs(float(snap.node("loss").value) - expected) <= 4 * np.finfo(np.float32).eps * abs(expected)


def test_dlogits_is_softmax_minus_onehot_over_the_batch():
    """The notebook's exercise 2 answer, against the engine's gradient of logits."""
    snap = Session(bundled("makemore_backprop")).snapshot
    logits = torch.tensor(snap.node("logits").value, dtype=torch.float64)
    yb = torch.tensor(snap.node("Yb").value)
    expected = (F.softmax(logits, 1) - F.one_hot(yb, 27)) / 32
    np.testing.assert_allclose(snap.node("logits").grad, expected.numpy(), atol=1e-6)


def test_embedding_grad_sums_the_rows_of_every_pick():
    """dC[k] = the sum of demb[i, j] over every (i, j) with Xb[i, j] == k (repeated picks add up)."""
    snap = Session(bundled("makemore_backprop")).snapshot
    xb = snap.node("Xb").value
    demb = snap.node("emb").grad
    dC = np.zeros((27, 10))
    for i in range(32):
        for j in range(3):
            dC[xb[i, j]] += demb[i, j]
    counts = np.bincount(xb.ravel(), minlength=27)
    assert counts.max() >= 2  # the seeded batch does repeat characters
    np.testing.assert_allclose(snap.node("C").grad, dC, rtol=1e-5, atol=1e-7)
    unused = np.flatnonzero(counts == 0)
    assert np.all(snap.node("C").grad[unused] == 0)


def test_logit_maxes_gradient_routes_to_each_rows_largest_logit():
    snap = Session(bundled("makemore_backprop")).snapshot
    logits = snap.node("logits").value
    # dlogit_maxes reaches logits only at each row's argmax, through max's backward
    d_max = snap.node("logit_maxes").grad[:, 0]
    d_norm = snap.node("norm_logits").grad
    routed = snap.node("logits").grad - d_norm
    expected = np.zeros_like(logits)
    expected[np.arange(32), logits.argmax(1)] = d_max
    np.testing.assert_allclose(routed, expected, atol=1e-6)
    assert np.abs(d_max).max() < 1e-5  # the loss does not depend on the shift


def test_show_json_gives_every_step_with_value_and_gradient(capsys):
    code = main(["show", "makemore_backprop", "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0
    nodes = {n["name"]: n for n in json.loads(out)["nodes"]}
    snap = Session(bundled("makemore_backprop")).snapshot
    for name in STEPS:
        node = nodes[name]
        assert node["grad"] is not None, name
        np.testing.assert_allclose(np.asarray(node["value"]), snap.node(name).value, rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(np.asarray(node["grad"]), snap.node(name).grad, rtol=1e-6, err_msg=name)


def test_an_edit_that_leaves_the_vocabulary_is_refused_and_changes_nothing():
    session = Session(bundled("makemore_backprop"))
    before = session.snapshot
    with pytest.raises(BackpropError, match=r"step 'emb': index out of range: 27 in dimension 0 of size 27"):
        session.set_element("Xb", (0, 0), 27)
    with pytest.raises(BackpropError, match=r"step 'loss': index out of range: 30 in dimension 1 of size 27"):
        session.set_element("Yb", (3,), 30)
    assert session.snapshot is before and session.leaf_value("Xb", (0, 0)) == before.node("Xb").value[0, 0]
    # a repeated pick moves C's gradient by the picked row's gradient
    after = session.set_element("Xb", (0, 0), 5)
    assert after.node("emb").value[0, 0].tolist() == after.node("C").value[5].tolist()
