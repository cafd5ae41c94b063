"""The torch.nn modules a preset declares (Embedding, LayerNorm, BatchNorm1d, Conv1d, Conv2d):
values and gradients against the same torch.nn module built here by hand under the same
seed, float64 finite differences, BatchNorm's running statistics, saving, and the clear
line a bad input gets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backprop_tui.engine import EditError, PresetError, Session, parse_preset
from backprop_tui.engine.analysis import gradcheck
from backprop_tui.engine.save import preset_toml

INPUTS = """
[tensors.img]
role = "input"
shape = [2, 2, 5, 5]
init = "randn"
seed = 3
requires_grad = true

[tensors.seq]
role = "input"
shape = [3, 2, 6]
init = "randn"
seed = 4
requires_grad = true

[tensors.rows]
role = "input"
shape = [4, 3]
init = "randn"
seed = 5
requires_grad = true

[tensors.tok]
role = "input"
dtype = "int"
value = [[0, 2], [2, 2], [1, 3]]

[tensors.probe]
role = "input"
shape = [64]
init = "randn"
seed = 6
"""

# module table, the step using it, the torch module built by hand with the same options
CASES = {
    "Conv2d": (
        'type = "Conv2d"\nin_channels = 2\nout_channels = 3\nkernel_size = [3, 2]\n'
        'stride = [2, 1]\npadding = 1\nseed = 7',
        "m(img)", "img", lambda: torch.nn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=1),
    ),
    "Conv1d": (
        'type = "Conv1d"\nin_channels = 2\nout_channels = 4\nkernel_size = 3\nstride = 2\nbias = false\nseed = 7',
        "m(seq)", "seq", lambda: torch.nn.Conv1d(2, 4, 3, stride=2, bias=False),
    ),
    "Embedding": (
        'type = "Embedding"\nnum_embeddings = 4\nembedding_dim = 5\nseed = 7',
        "m(tok)", "tok", lambda: torch.nn.Embedding(4, 5),
    ),
    "LayerNorm": (
        'type = "LayerNorm"\nnormalized_shape = 3\nweight = [1.5, -0.5, 2.0]\nbias = [0.1, 0.2, -0.3]',
        "m(rows)", "rows", None,
    ),
    "BatchNorm1d": (
        'type = "BatchNorm1d"\nnum_features = 3\nweight = [1.5, -0.5, 2.0]\nbias = [0.1, 0.2, -0.3]',
        "m(rows)", "rows", None,
    ),
}


def _preset(kind: str):
    table, expr, _, _ = CASES[kind]
    text = f'output = "J"\n{INPUTS}\n[modules.m]\n{table}\n\n[[steps]]\nname = "y"\nexpr = "{expr}"\n\n'
    # a loss that weights every output element differently, so no gradient is trivially 1
    text += '[[steps]]\nname = "J"\nexpr = "sum(y * y * 0.5 + y * 0.25)"\n'
    return parse_preset(text)


def _by_hand(kind: str, preset) -> torch.nn.Module:
    """The torch.nn module itself: seeded as PyTorch would, or given the explicit weights."""
    table, _, _, make = CASES[kind]
    if make is not None:
        torch.manual_seed(7)
        return make()
    weight = torch.tensor([1.5, -0.5, 2.0])
    bias = torch.tensor([0.1, 0.2, -0.3])
    layer = torch.nn.LayerNorm(3) if kind == "LayerNorm" else torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    return layer


@pytest.mark.parametrize("kind", list(CASES))
def test_values_and_gradients_equal_the_torch_module(kind):
    preset = _preset(kind)
    snap = Session(preset).snapshot
    layer = _by_hand(kind, preset)
    x_name = CASES[kind][2]
    x = torch.tensor(preset.leaf(x_name).initial)
    if x.is_floating_point():
        x.requires_grad_(True)
    y = layer(x)
    (y * y * 0.5 + y * 0.25).sum().backward()
    np.testing.assert_allclose(snap.node("y").value, y.detach().numpy(), rtol=1e-5, atol=1e-6)
    for pname, p in layer.named_parameters():
        np.testing.assert_allclose(snap.node(f"m.{pname}").value, p.detach().numpy(), rtol=0, atol=0, err_msg=pname)
        np.testing.assert_allclose(snap.node(f"m.{pname}").grad, p.grad.numpy(), rtol=1e-5, atol=1e-5, err_msg=pname)
    assert [f"m.{p}" for p, _ in layer.named_parameters()] == [n for n in preset.leaf_names if n.startswith("m.")]
    if x.is_floating_point():
        np.testing.assert_allclose(snap.node(x_name).grad, x.grad.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", list(CASES))
def test_gradients_agree_with_float64_finite_differences(kind):
    check = gradcheck.gradcheck(Session(_preset(kind)))
    assert check.elements and check.passed, check.summary


@pytest.mark.parametrize("kind", list(CASES))
def test_an_edited_parameter_is_used_and_saved(kind):
    session = Session(_preset(kind))
    before = session.snapshot.node("J").scalar()
    session.set_element("m.weight", (0,) * len(session.preset.leaf("m.weight").shape), 3.25)
    assert session.snapshot.node("J").scalar() != before
    reloaded = Session(parse_preset(preset_toml(session)))
    for leaf in session.preset.leaves:
        np.testing.assert_array_equal(reloaded.values[leaf.name].numpy(), session.values[leaf.name].numpy())
    assert reloaded.snapshot.node("J").scalar() == session.snapshot.node("J").scalar()


def test_batchnorm_running_statistics_are_shown_and_do_not_drift():
    session = Session(_preset("BatchNorm1d"))
    rows = torch.tensor(session.preset.leaf("rows").initial)
    expected_mean = 0.1 * rows.mean(0)  # one update from 0 with momentum 0.1
    expected_var = 0.9 + 0.1 * rows.var(0, correction=1)  # the running variance is the unbiased one
    for _ in range(3):  # edits do not accumulate updates: each pass starts from the initial statistics
        buffers = session.snapshot.buffers
        np.testing.assert_allclose(buffers["m.running_mean"], expected_mean.numpy(), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(buffers["m.running_var"], expected_var.numpy(), rtol=1e-6)
        session.nudge("m.bias", (0,), 0.5)
    assert set(session.snapshot.buffers) == {"m.running_mean", "m.running_var"}
    assert all(n.name not in ("m.running_mean", "m.running_var") for n in session.snapshot.nodes)  # not leaves


def test_an_embedding_index_edited_out_of_the_table_is_refused_with_one_line():
    session = Session(_preset("Embedding"))
    before = session.snapshot
    message = r"m\(\): index 9 is out of range for 4 embeddings \(num_embeddings\)\); nothing changed$"
    with pytest.raises(EditError, match=message):
        session.set_element("tok", (0, 1), 9)
    assert session.snapshot is before and int(session.values["tok"][0, 1]) == 2


def test_an_oversized_conv_output_is_refused_before_torch_runs(monkeypatch):
    import torch.nn.functional as F

    calls = []
    monkeypatch.setattr(F, "conv2d", lambda *a, **k: calls.append(a))
    text = (
        'output = "J"\n[tensors.x]\nrole = "input"\nshape = [1, 1, 1000, 1000]\ninit = "zeros"\n'
        '[modules.c]\ntype = "Conv2d"\nin_channels = 1\nout_channels = 8\nkernel_size = 1\nseed = 0\n'
        '[[steps]]\nname = "J"\nexpr = "sum(c(x))"\n'
    )
    with pytest.raises(PresetError, match=r"shape \[1, 8, 1000, 1000\] \(8,000,000 elements\); the limit is 1,000,000"):
        parse_preset(text)
    assert calls == []


def test_seeded_parameters_are_pytorchs_own_initialisation():
    preset = _preset("Conv2d")
    torch.manual_seed(7)
    layer = torch.nn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=1)
    np.testing.assert_array_equal(preset.leaf("m.weight").initial, layer.weight.detach().numpy())
    state = torch.random.get_rng_state()
    _preset("Conv2d")
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator is left alone


@pytest.mark.parametrize("kind", ["Conv2d", "Conv1d"])
def test_the_kernel_gradient_is_the_correlation_of_input_and_output_gradient(kind):
    from backprop_tui.engine.analysis import local
    from backprop_tui.engine.analysis.convolution import kernel_grad

    session = Session(_preset(kind))
    snap = session.snapshot
    x_name = CASES[kind][2]
    options = dict(next(m for m in session.preset.modules if m.name == "m").options)
    dims = 2 if kind == "Conv2d" else 1

    def pair(key):
        v = options[key]
        return tuple(v) if isinstance(v, list) else (v,) * dims

    x, g = snap.node(x_name).value, snap.node("y").grad
    by_sum = kernel_grad(x, g, pair("kernel_size"), pair("stride"), pair("padding"))
    np.testing.assert_allclose(by_sum, snap.node("m.weight").grad, rtol=1e-4, atol=1e-6)
    line = next(d.text for d in local.local_derivatives(session, "y") if d.input == "m.weight")
    assert f"the correlation of {x_name} with y's gradient" in line
    assert line.endswith(f"= {by_sum.reshape(-1)[0]:.6g}") or f"= {by_sum.reshape(-1)[0]:.6g} (" in line
