"""attention_head: the causal mask gives zero weight and passes no gradient ahead of a
token; each token's weights are a softmax; torch's own attention gives the same output."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from backprop_tui.engine import Session
from engine_support import bundled

AHEAD = np.triu(np.ones((4, 4), dtype=bool), k=1)


def test_the_mask_is_causal():
    mask = bundled("attention_head").leaf("mask").initial
    assert np.all(mask[AHEAD] == -1e9) and np.all(mask[~AHEAD] == 0)


def test_masked_positions_get_no_weight_and_no_gradient():
    snap = Session(bundled("attention_head")).snapshot
    weights = snap.node("weights").value
    assert np.all(weights[AHEAD] == 0)
    np.testing.assert_allclose(weights.sum(axis=1), 1, rtol=1e-6)
    assert np.all(snap.node("masked").grad[AHEAD] == 0) and np.all(snap.node("scores").grad[AHEAD] == 0)
    assert np.abs(snap.node("scores").grad[~AHEAD]).max() > 1e-4  # and gradient where a token may look


def test_output_equals_torch_scaled_dot_product_attention():
    snap = Session(bundled("attention_head")).snapshot
    q, k, v = (torch.tensor(snap.node(n).value) for n in "qkv")
    expected = F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=True)[0]
    np.testing.assert_allclose(snap.node("out").value, expected.numpy(), rtol=1e-5, atol=1e-6)
