"""The two scale presets: mlp_784 (about 110,000 parameters) and deep_chain (500 scalar steps).

Each is checked against a computation written here independently: the MLP with its own
nn.Linear layers built under the same seeds, the chain with a float64 torch loop and
central finite differences. The numbers the deep_chain description teaches are checked too.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from backprop_tui.cli import main as cli_main
from backprop_tui.engine import Session, bundled_presets, load_preset

LAYERS = 250


@pytest.fixture(scope="module")
def mlp():
    return Session(load_preset(bundled_presets()["mlp_784"]))


@pytest.fixture(scope="module")
def chain_preset():
    return load_preset(bundled_presets()["deep_chain"])


@pytest.mark.parametrize("name", ["mlp_784", "deep_chain", "mlp_1m"])
def test_the_scale_presets_are_bundled_and_pass_check(name, capsys):
    path = bundled_presets()[name]
    assert cli_main(["check", str(path)]) == 0
    assert capsys.readouterr().out.strip().endswith(": ok")


# ---------------------------------------------------------------- mlp_784


def reference_mlp():
    """The same network written out with torch: seeded nn.Linear layers, a seeded batch."""
    layers = []
    for seed, (n_in, n_out) in zip((1, 2, 3), ((784, 128), (128, 64), (64, 10))):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            layers.append(nn.Linear(n_in, n_out))
    X = torch.randn(32, 784, generator=torch.Generator().manual_seed(784))
    classes = torch.randint(0, 10, (32,), generator=torch.Generator().manual_seed(10))
    l1, l2, l3 = layers
    Z1 = l1(X)
    A1 = torch.relu(Z1)
    Z2 = l2(A1)
    A2 = torch.relu(Z2)
    logits = l3(A2)
    loss = nn.functional.cross_entropy(logits, classes)
    steps = {"Z1": Z1, "A1": A1, "Z2": Z2, "A2": A2, "logits": logits, "loss": loss}
    for t in steps.values():
        t.retain_grad()
    loss.backward()
    leaves = {"X": X, "classes": classes}
    for i, layer in enumerate(layers, start=1):
        leaves[f"linear{i}.weight"] = layer.weight
        leaves[f"linear{i}.bias"] = layer.bias
    return leaves, steps


def test_mlp_784_has_the_documented_size(mlp):
    params = [leaf for leaf in mlp.preset.leaves if leaf.role == "parameter"]
    assert sum(leaf.initial.size for leaf in params) == 109_386
    assert mlp.snapshot.node("X").shape == (32, 784)
    assert mlp.snapshot.node("logits").shape == (32, 10)
    classes = mlp.snapshot.node("classes").value
    assert classes.dtype == np.int64 and classes.min() >= 0 and classes.max() <= 9


def test_mlp_784_values_and_gradients_equal_an_independent_torch_computation(mlp):
    leaves, steps = reference_mlp()
    snapshot = mlp.snapshot
    for name, tensor in leaves.items():
        np.testing.assert_array_equal(snapshot.node(name).value, tensor.detach().numpy(), err_msg=name)
        if tensor.is_floating_point() and tensor.requires_grad:
            np.testing.assert_allclose(
                snapshot.node(name).grad, tensor.grad.numpy(), rtol=1e-5, atol=1e-7, err_msg=name
            )
    assert snapshot.node("X").grad is None and snapshot.node("classes").grad is None
    for name, tensor in steps.items():
        np.testing.assert_allclose(
            snapshot.node(name).value, tensor.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=name
        )
        np.testing.assert_allclose(snapshot.node(name).grad, tensor.grad.numpy(), rtol=1e-5, atol=1e-8, err_msg=name)
    assert math.isclose(snapshot.loss, 2.2975, abs_tol=1e-3)  # about log(10): the labels are random


def test_an_sgd_step_on_mlp_784_lowers_the_loss_and_undo_restores_it():
    session = Session(load_preset(bundled_presets()["mlp_784"]))
    before = session.snapshot.loss
    weight = session.values["linear1.weight"].clone()
    session.step()
    assert session.snapshot.loss < before
    np.testing.assert_allclose(
        session.values["linear1.weight"].numpy(),
        (weight - 0.1 * torch.from_numpy(np.array(session.previous.node("linear1.weight").grad))).numpy(),
        rtol=0, atol=1e-7,
    )
    session.undo()
    assert session.snapshot.loss == before


# ---------------------------------------------------------------- deep_chain


def reference_chain(x: float, w: float, b: float, y: float = 1.0):
    """The chain in float64, written as a loop: a_k = w*h_(k-1) + b, h_k = tanh(a_k), J = (h - y)^2 / 2."""
    x_, w_, b_ = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (x, w, b))
    h = x_
    steps = {}
    for k in range(1, LAYERS + 1):
        a = w_ * h + b_
        h = torch.tanh(a)
        steps[f"a{k}"], steps[f"h{k}"] = a, h
    J = (h - y) ** 2 / 2
    steps["J"] = J
    for t in steps.values():
        t.retain_grad()
    J.backward()
    return {"x": x_, "w": w_, "b": b_, **steps}


def chain_loss(x: float, w: float, b: float, y: float = 1.0) -> float:
    h = x
    for _ in range(LAYERS):
        h = math.tanh(w * h + b)
    return (h - y) ** 2 / 2


def test_deep_chain_has_500_chain_steps_and_a_cost(chain_preset):
    names = [s.name for s in chain_preset.steps]
    assert len(names) == 2 * LAYERS + 1 and names[:2] == ["a1", "h1"] and names[-1] == "J"
    assert chain_preset.output == "J"
    assert all(shape == () for shape in chain_preset.shapes.values())


def test_deep_chain_values_and_gradients_equal_a_float64_torch_loop(chain_preset):
    snapshot = Session(chain_preset).snapshot
    reference = reference_chain(1.0, 1.0, 0.0)
    for name, tensor in reference.items():
        node = snapshot.node(name)
        assert node.value.item() == pytest.approx(tensor.item(), rel=1e-5, abs=1e-7), name
        assert node.grad.item() == pytest.approx(tensor.grad.item(), rel=1e-4, abs=1e-9), name


def test_deep_chain_gradients_equal_central_finite_differences_in_float64(chain_preset):
    snapshot = Session(chain_preset).snapshot
    eps = 1e-6
    point = {"x": 1.0, "w": 1.0, "b": 0.0}
    for name in point:
        up, down = dict(point), dict(point)
        up[name] += eps
        down[name] -= eps
        numeric = (chain_loss(**up) - chain_loss(**down)) / (2 * eps)
        assert snapshot.node(name).grad.item() == pytest.approx(numeric, rel=1e-4, abs=1e-9), name


# For w > 1 the chain has an unstable fixed point at h = 0 (its slope there is w**250): near
# it, float32 and float64 part ways by design, so the property is asserted for w <= 1, and
# for w > 1 away from that point (x = 1, b = 0 in the other tests).
@settings(max_examples=15, deadline=None)
@given(w=st.floats(0.5, 1.0), b=st.floats(-0.5, 0.5), x=st.floats(-2.0, 2.0))
def test_deep_chain_matches_the_float64_loop_for_any_weight_bias_and_input(chain_preset, w, b, x):
    session = Session(chain_preset)
    session.set_element("w", (), w)
    session.set_element("b", (), b)
    session.set_element("x", (), x)
    stored = {k: session.leaf_value(k) for k in ("x", "w", "b")}  # the float32 values the engine holds
    reference = reference_chain(**stored)
    snapshot = session.snapshot
    assert snapshot.loss == pytest.approx(reference["J"].item(), rel=1e-4, abs=1e-6)
    for name in ("w", "b", "h250", "a1"):
        assert snapshot.node(name).grad.item() == pytest.approx(reference[name].grad.item(), rel=2e-3, abs=1e-6), name


@pytest.mark.parametrize("w", [1.2, 1.5])
def test_deep_chain_matches_the_float64_loop_when_tanh_saturates(chain_preset, w):
    session = Session(chain_preset)
    session.set_element("w", (), w)
    reference = reference_chain(1.0, session.leaf_value("w"), 0.0)
    for name in ("J", "w", "b", "h250"):
        node = session.snapshot.node(name)
        assert node.value.item() == pytest.approx(reference[name].item(), rel=1e-4, abs=1e-7), name
        assert node.grad.item() == pytest.approx(reference[name].grad.item(), rel=1e-3, abs=1e-7), name


def test_the_numbers_in_the_deep_chain_description_hold(chain_preset):
    """Vanishing gradients: what the preset's description promises the reader will see."""
    session = Session(chain_preset)
    snap = session.snapshot
    assert snap.node("h250").grad.item() == pytest.approx(-0.92, abs=0.005)
    assert snap.node("x").grad.item() == pytest.approx(-0.00038, rel=0.01)
    assert abs(snap.node("a1").grad.item()) < 1e-3 * abs(snap.node("a250").grad.item())
    session.set_element("w", (), 0.9)
    assert 1e-13 < abs(session.snapshot.node("x").grad.item()) < 1e-12
    session.set_element("w", (), 1.2)
    assert 0 <= abs(session.snapshot.node("x").grad.item()) < 1e-42
    for needle in ("0.00038", "-0.92", "4e-13", "1e-43", "a1 and a250"):
        assert needle in chain_preset.description


def test_sgd_history_on_mlp_784_stays_within_its_memory_budget_and_undoes_exactly():
    from backprop_tui.engine import session as session_module

    session = Session(load_preset(bundled_presets()["mlp_784"]))
    losses = [session.snapshot.loss]
    for _ in range(100):
        losses.append(session.step().loss)
    held = {id(t) for e in session.undo_stack for c in e.changes for t in (c.old, c.new)}
    per_step = sum(leaf.initial.nbytes for leaf in session.preset.leaves if leaf.role == "parameter")
    assert session._history_bytes <= session_module.MAX_HISTORY_BYTES
    assert len(session.undo_stack) < 100  # the oldest steps were forgotten
    assert len(held) <= (len(session.undo_stack) + 1) * 6  # consecutive steps share their tensors
    assert len(held) * per_step / 6 < session_module.MAX_HISTORY_BYTES
    kept = len(session.undo_stack)
    for _ in range(kept):
        session.undo()
    assert session.snapshot.loss == losses[100 - kept]
    session.redo()
    assert session.snapshot.loss == losses[100 - kept + 1]


def test_mlp_1m_has_about_a_million_parameters_and_matches_its_own_layers():
    """784-1024-256-10: PyTorch's nn.Linear under the preset's seeds, run here on its own."""
    session = Session(load_preset(bundled_presets()["mlp_1m"]))
    preset = session.preset
    params = [leaf for leaf in preset.leaves if leaf.role == "parameter"]
    assert sum(leaf.initial.size for leaf in params) == 1_068_810
    layers = []
    for seed, (n_in, n_out) in zip((1, 2, 3), ((784, 1024), (1024, 256), (256, 10))):
        torch.manual_seed(seed)
        layers.append(nn.Linear(n_in, n_out))
    X = torch.tensor(preset.leaf("X").initial)
    classes = torch.tensor(preset.leaf("classes").initial)
    logits = layers[2](torch.relu(layers[1](torch.relu(layers[0](X)))))
    loss = nn.functional.cross_entropy(logits, classes)
    loss.backward()
    snap = session.snapshot
    assert float(snap.node("loss").value) == pytest.approx(loss.item(), rel=1e-5)
    np.testing.assert_allclose(snap.node("linear1.weight").grad, layers[0].weight.grad.numpy(), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(snap.node("linear3.bias").grad, layers[2].bias.grad.numpy(), rtol=1e-4, atol=1e-7)
