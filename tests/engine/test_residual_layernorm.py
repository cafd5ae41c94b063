"""residual_layernorm: x's gradient is the identity (out's gradient) plus the branch's part,
LayerNorm normalises each token, and the module equals torch's layer_norm."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from backprop_tui.engine import Session
from engine_support import bundled


def test_x_gradient_is_the_identity_plus_the_branch():
    snap = Session(bundled("residual_layernorm")).snapshot
    preset = bundled("residual_layernorm")
    p = {leaf.name: torch.tensor(leaf.initial) for leaf in preset.leaves}
    x = p["x"].clone().requires_grad_(True)
    branch = F.linear(torch.relu(F.linear(F.layer_norm(x, (8,), p["ln.weight"], p["ln.bias"]),
                                          p["W1.weight"], p["W1.bias"])), p["W2.weight"], p["W2.bias"])
    g_out = torch.tensor(snap.node("out").grad)
    (through_branch,) = torch.autograd.grad(branch, x, g_out)
    np.testing.assert_allclose(snap.node("x").grad, g_out.numpy() + through_branch.numpy(), rtol=1e-5, atol=1e-7)
    assert np.abs(through_branch.numpy()).max() > 1e-3  # the branch adds something: not the identity alone
    np.testing.assert_allclose(g_out.numpy(), 2 * (snap.node("out").value - p["target"].numpy()) / 32, rtol=1e-5)


def test_layernorm_normalises_each_token():
    snap = Session(bundled("residual_layernorm")).snapshot
    normed = snap.node("normed").value.astype(np.float64)
    np.testing.assert_allclose(normed.mean(axis=1), 0, atol=1e-6)
    np.testing.assert_allclose(normed.var(axis=1), 1, rtol=1e-4)  # weight 1, bias 0 at the start
    x = torch.tensor(snap.node("x").value)
    np.testing.assert_allclose(normed, F.layer_norm(x, (8,)).numpy(), rtol=1e-5, atol=1e-6)
