"""tiny_cnn: the same network in plain torch.nn gives the same loss and gradients; max
pooling sends each window's gradient to its maximum only; the kernels' gradient is the
correlation of the image with the feature maps' gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from backprop_tui.engine import Session
from backprop_tui.engine.analysis.convolution import kernel_grad
from engine_support import bundled


def test_the_network_in_torch_nn_gives_the_same_loss_and_gradients():
    preset = bundled("tiny_cnn")
    snap = Session(preset).snapshot
    torch.manual_seed(11)
    conv = torch.nn.Conv2d(1, 2, 3)
    torch.manual_seed(6)
    classifier = torch.nn.Linear(8, 3)
    image = torch.tensor(preset.leaf("image").initial)
    logits = classifier(F.max_pool2d(torch.relu(conv(image)), 2).flatten(1))
    loss = F.cross_entropy(logits, torch.tensor([1]))
    loss.backward()
    assert abs(snap.loss - loss.item()) < 1e-6
    for name, p in [("conv.weight", conv.weight), ("conv.bias", conv.bias),
                    ("classifier.weight", classifier.weight), ("classifier.bias", classifier.bias)]:
        np.testing.assert_allclose(snap.node(name).grad, p.grad.numpy(), rtol=1e-5, atol=1e-7, err_msg=name)


def test_max_pooling_routes_each_windows_gradient_to_its_maximum():
    snap = Session(bundled("tiny_cnn")).snapshot
    act, act_grad, pooled_grad = snap.node("act").value, snap.node("act").grad, snap.node("pooled").grad
    windows = act.reshape(1, 2, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 2, 2, 4)
    grads = act_grad.reshape(1, 2, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 2, 2, 4)
    for c, i, j in np.ndindex(2, 2, 2):
        top = int(np.argmax(windows[c, i, j]))
        assert grads[c, i, j, top] == pooled_grad[0, c, i, j]
        assert np.all(np.delete(grads[c, i, j], top) == 0)  # the other three get nothing
    assert np.abs(pooled_grad).min() > 0


def test_the_kernel_gradient_is_the_correlation_of_image_and_feature_gradient():
    snap = Session(bundled("tiny_cnn")).snapshot
    by_sum = kernel_grad(snap.node("image").value, snap.node("features").grad, (3, 3), (1, 1), (0, 0))
    np.testing.assert_allclose(by_sum, snap.node("conv.weight").grad, rtol=1e-5, atol=1e-7)
    # the bias's gradient is each feature map's gradient summed over its positions
    np.testing.assert_allclose(snap.node("conv.bias").grad, snap.node("features").grad.sum(axis=(0, 2, 3)), rtol=1e-5)


def test_the_inspector_says_where_max_pooling_sends_each_gradient():
    from backprop_tui.engine.analysis.pooling import routing_lines

    snap = Session(bundled("tiny_cnn")).snapshot
    act = torch.tensor(snap.node("act").value)
    lines = routing_lines("pooled", "act", act, torch.tensor(snap.node("pooled").grad), {"kernel_size": 2})
    windows = snap.node("act").value[0, 0, :2, :2]
    i, j = np.unravel_index(np.argmax(windows), (2, 2))
    grad = snap.node("pooled").grad[0, 0, 0, 0]
    assert lines[1].startswith(f"pooled[0,0,0,0] is act[0,0,{i},{j}], the maximum of its window: its grad ")
    assert snap.node("act").grad[0, 0, i, j] == grad


POOLS = {"max_pool2d": F.max_pool2d, "avg_pool2d": F.avg_pool2d}


@pytest.mark.parametrize("func", list(POOLS))
@pytest.mark.parametrize("keywords", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 1, "padding": 1}])
def test_pooling_functions_equal_torch_and_finite_differences(func, keywords):
    from backprop_tui.engine import parse_preset
    from backprop_tui.engine.analysis import gradcheck

    kw = ", ".join(f"{k}={v}" for k, v in keywords.items())
    text = (
        'output = "J"\n[tensors.x]\nrole = "parameter"\nshape = [2, 3, 5, 4]\ninit = "randn"\nseed = 9\n'
        f'[[steps]]\nname = "y"\nexpr = "{func}(x, {kw})"\n[[steps]]\nname = "J"\nexpr = "sum(y * y)"\n'
    )
    session = Session(parse_preset(text))
    x = torch.tensor(session.preset.leaf("x").initial, requires_grad=True)
    y = POOLS[func](x, **keywords)
    (y * y).sum().backward()
    np.testing.assert_allclose(session.snapshot.node("y").value, y.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(session.snapshot.node("x").grad, x.grad.numpy(), rtol=1e-5, atol=1e-7)
    check = gradcheck.gradcheck(session)
    assert check.elements and check.passed, check.summary


def test_the_inspector_shows_the_routing_for_the_pooled_step_and_its_input():
    from backprop_tui.ui.teaching.sections import SnapshotCache, inspector_sections

    session = Session(bundled("tiny_cnn"))
    for name in ("pooled", "act"):
        lines, _ = inspector_sections(session, session.snapshot, name, None, SnapshotCache())
        text = [line.plain for line in lines]
        assert text[0] == "Max pooling: where the gradient goes", name
        assert text[2].startswith("  pooled[0,0,0,0] is act[0,0,"), name
    lines, _ = inspector_sections(session, session.snapshot, "logits", None, SnapshotCache())
    assert all("Max pooling" not in line.plain for line in lines)
