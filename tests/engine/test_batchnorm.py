"""batchnorm: nn.BatchNorm1d and batch norm written out step by step give the same values
and the same gradients; both equal torch's own batch norm and cross-entropy; the running
statistics are one momentum step from their start."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from backprop_tui.engine import Session
from engine_support import bundled

TWINS = [("hpreact", "hpreact_bn"), ("h", "h_bn"), ("logits", "logits_bn"), ("loss_steps", "loss_bn")]


def test_twin_nodes_have_the_same_values_and_gradients():
    snap = Session(bundled("batchnorm")).snapshot
    for steps, module in TWINS:
        a, b = snap.node(steps), snap.node(module)
        np.testing.assert_allclose(a.value, b.value, rtol=1e-5, atol=1e-6, err_msg=steps)
        np.testing.assert_allclose(a.grad, b.grad, rtol=1e-4, atol=1e-8, err_msg=steps)
    for mine, torchs in (("bngain", "bn.weight"), ("bnbias", "bn.bias")):
        np.testing.assert_allclose(snap.node(mine).grad[0], snap.node(torchs).grad, rtol=1e-4, atol=1e-8)
        assert np.abs(snap.node(torchs).grad).max() > 1e-4  # a real gradient, not two zeros


def test_hprebn_gets_two_equal_halves():
    """Its gradient is the sum over its two consumers' paths, and each half is the same."""
    preset = bundled("batchnorm")
    session = Session(preset)
    hprebn = torch.tensor(session.snapshot.node("hprebn").value, requires_grad=True)
    via_module = F.batch_norm(hprebn, None, None, torch.tensor(preset.leaf("bn.weight").initial),
                              torch.tensor(preset.leaf("bn.bias").initial), training=True)
    (half,) = torch.autograd.grad(via_module, hprebn, torch.tensor(session.snapshot.node("hpreact_bn").grad))
    np.testing.assert_allclose(session.snapshot.node("hprebn").grad, 2 * half.numpy(), rtol=1e-3, atol=1e-9)


def test_loss_equals_torch_batch_norm_and_cross_entropy():
    preset = bundled("batchnorm")
    leaves = {leaf.name: torch.tensor(leaf.initial) for leaf in preset.leaves}
    x = leaves["C.weight"][leaves["Xb"]].reshape(32, -1) @ leaves["layer1.weight"].T
    h = torch.tanh(F.batch_norm(x, None, None, leaves["bn.weight"], leaves["bn.bias"], training=True))
    loss = F.cross_entropy(F.linear(h, leaves["layer2.weight"], leaves["layer2.bias"]), leaves["Yb"])
    assert abs(Session(preset).snapshot.loss - loss.item()) < 1e-5


def test_running_statistics_are_one_momentum_step_from_the_start():
    session = Session(bundled("batchnorm"))
    hprebn = torch.tensor(session.snapshot.node("hprebn").value, dtype=torch.float64)
    buffers = session.snapshot.buffers
    np.testing.assert_allclose(buffers["bn.running_mean"], 0.1 * hprebn.mean(0).numpy(), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(buffers["bn.running_var"], 0.9 + 0.1 * hprebn.var(0).numpy(), rtol=1e-5)


def test_the_inspector_names_the_module_and_shows_its_running_statistics():
    from backprop_tui.engine.format import format_array
    from backprop_tui.ui.teaching.explain import explain

    session = Session(bundled("batchnorm"))
    buffers = session.snapshot.buffers
    explanation = explain(session, "bn.weight", buffers)
    assert explanation.module == "nn.BatchNorm1d"
    assert [line.split(" = ")[0] for line in explanation.module_lines] == ["bn.running_mean", "bn.running_var"]
    assert format_array(buffers["bn.running_var"]) in explanation.module_lines[1]
    assert explain(session, "C.weight", buffers).module == "nn.Embedding"
    assert explain(session, "C.weight", buffers).module_lines == ()  # no buffers
    assert explain(session, "bngain", buffers).module == ""  # a plain tensor
