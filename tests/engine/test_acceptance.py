"""Issue 2, section 4: the acceptance values, through the engine and through `show --format json`.

Every check runs twice: once on the engine's Snapshot (Session) and once on what
`backprop-tui show PRESET --format json` prints, so the CLI cannot drift from the engine.
Reference numbers come from the seed notebook, the issue, and torch code written
independently in torch_reference.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import torch_reference as ref
from backprop_tui.cli import main
from backprop_tui.engine import Session
from engine_support import BUNDLED, bundled, initial_values, view_of_json, view_of_snapshot


@pytest.fixture(params=["engine", "json"])
def view(request, capsys):
    """A function: preset name (and extra CLI args) -> {node: {value, grad, kind, ...}}."""

    def engine(name: str, *args: str):
        assert not args
        return view_of_snapshot(Session(bundled(name)).snapshot)

    def json_output(name: str, *args: str):
        code = main(["show", name, "--format", "json", *args])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert captured.err == ""
        return view_of_json(captured.out)[0]

    return engine if request.param == "engine" else json_output


def values(v, *names):
    return [v[n]["value"].tolist() for n in names]


def grads(v, *names):
    return [None if v[n]["grad"] is None else v[n]["grad"].tolist() for n in names]


# ---------------------------------------------------------------- the seed's three examples


def test_scalar_chain(view):
    v = view("scalar_chain")
    assert values(v, "x", "h", "g", "f") == [-3.0, 2.0, 9.0, 81.0]
    assert grads(v, "f", "g", "h", "x") == [1.0, 18.0, 216.0, 216.0]
    assert v["x"]["kind"] == "input" and v["x"]["requires_grad"] is True
    assert [v[n]["kind"] for n in ("h", "g", "f")] == ["intermediate", "intermediate", "output"]
    assert v["x"]["grad_fn"] is None
    assert v["g"]["inputs"] == ["h"]


def test_linear_regression(view):
    v = view("linear_regression")
    assert values(v, "x", "y", "w", "b") == [-3.0, 5.0, 3.0, 1.0]
    assert values(v, "c", "f", "d", "J") == [-9.0, -8.0, -13.0, 84.5]
    assert grads(v, "d", "f", "c", "b") == [-13.0, -13.0, -13.0, -13.0]
    assert grads(v, "w") == [39.0]
    assert grads(v, "x", "y") == [None, None]  # no gradient, never shown as 0
    assert v["x"]["requires_grad"] is False and v["y"]["requires_grad"] is False
    assert [v[n]["kind"] for n in ("x", "y", "w", "b", "J")] == ["input", "target", "parameter", "parameter", "output"]
    assert v["c"]["inputs"] == ["w", "x"]


SIMPLE_NN = {
    "Z1": [[2, 12, 3], [4, 30, 9]],
    "A1": [[2, 12, 3], [4, 30, 9]],
    "Z2": [[3, 8.5], [10, 13.5]],
    "A2": [[3, 8.5], [10, 13.5]],
}


def test_simple_nn_forward(view):
    v = view("simple_nn")
    for name, expected in SIMPLE_NN.items():
        assert v[name]["value"].tolist() == expected, name  # exact in float32
    np.testing.assert_allclose(v["Z3"]["value"], [[-0.95], [1.05]], rtol=0, atol=1e-6)
    np.testing.assert_allclose(v["A3"]["value"], [[0.278885], [0.740775]], rtol=0, atol=1e-6)
    np.testing.assert_allclose(v["J"]["value"], 0.0130999, rtol=1e-5)
    assert v["J"]["shape"] == [] and v["A3"]["shape"] == [2, 1]


def test_simple_nn_gradients(view):
    v = view("simple_nn")
    np.testing.assert_allclose(v["linear3.weight"]["grad"], [[-0.123566, -0.265756]], rtol=2e-5)
    np.testing.assert_allclose(v["linear3.bias"]["grad"], [-0.0279205], rtol=2e-5)
    np.testing.assert_allclose(v["linear1.bias"]["grad"], [-0.00111682, -0.0131226, 0.0304333], rtol=2e-5)
    assert v["X"]["grad"] is None and v["Y"]["grad"] is None


def test_simple_nn_structure(view):
    v = view("simple_nn")
    names = list(v)
    # parameters carry PyTorch's own names; nodes come in topological order
    for p in ("linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias", "linear3.weight", "linear3.bias"):
        assert v[p]["kind"] == "parameter" and v[p]["requires_grad"] is True
    order = ["Z1", "A1", "Z2", "A2", "Z3", "A3", "J"]
    assert [n for n in names if n in order] == order
    for node, info in v.items():
        for source in info["inputs"]:
            assert names.index(source) < names.index(node), f"{source} comes after its consumer {node}"
    assert v["Z1"]["inputs"] == ["X", "linear1.weight", "linear1.bias"]
    assert v["Z1"]["grad_fn"] == "AddmmBackward0"
    assert v["A1"]["grad_fn"] == "ReluBackward0"
    assert v["A3"]["grad_fn"] == "SigmoidBackward0"
    assert v["linear1.weight"]["shape"] == [3, 2]


def seed_style_grad_fns() -> dict[str, dict[str, str]]:
    """grad_fn names of the seed notebook's own code (Python numbers as constants)."""
    x = torch.tensor(-3.0, requires_grad=True)
    h = x + 5
    g = h**3 + 1
    f = g**2
    chain = {"h": h, "g": g, "f": f}
    x, y = torch.tensor(-3.0), torch.tensor(5.0)
    w, b = torch.tensor(3.0, requires_grad=True), torch.tensor(1.0, requires_grad=True)
    c = w * x
    f = c + b
    d = f - y
    J = d**2 / 2
    regression = {"c": c, "f": f, "d": d, "J": J}
    return {
        "scalar_chain": {k: type(t.grad_fn).__name__ for k, t in chain.items()},
        "linear_regression": {k: type(t.grad_fn).__name__ for k, t in regression.items()},
    }


@pytest.mark.parametrize("name", ["scalar_chain", "linear_regression"])
def test_grad_fn_names_are_those_of_the_seed_code(view, name):
    """The issue's example: f = g**2 shows PowBackward0, as torch names it for the seed's code."""
    v = view(name)
    expected = seed_style_grad_fns()[name]
    assert {k: v[k]["grad_fn"] for k in expected} == expected


# ---------------------------------------------------------------- the other bundled presets


def test_gradient_accumulation(view):
    v = view("gradient_accumulation")
    x, y = v["x"]["value"].item(), v["y"]["value"].item()
    assert v["x"]["grad"].item() == y + 1  # df/dx summed over both paths
    assert v["y"]["grad"].item() == x
    assert v["f"]["value"].item() == x * y + x
    consumers = [n for n, info in v.items() if "x" in info["inputs"]]
    assert consumers == ["p", "f"]  # one node x, two consumers
    assert list(v).count("x") == 1


def test_shared_node_appears_once_with_its_consumers():
    snap = Session(bundled("gradient_accumulation")).snapshot
    assert [n.name for n in snap.nodes].count("x") == 1
    assert snap.node("x").consumers == ("p", "f")
    assert snap.node("p").consumers == ("f",) and snap.node("f").consumers == ()
    # the accumulated sum: df/dx = df/dp * dp/dx + df/df * 1 = y + 1
    assert snap.node("x").scalar_grad() == snap.node("y").scalar() + 1
    nn = Session(bundled("simple_nn")).snapshot
    assert nn.node("Y").consumers == ("J",) and nn.node("linear2.weight").consumers == ("Z2",)


def test_dead_relu(view):
    v = view("dead_relu")
    Z = v["Z"]["value"]
    assert (Z[:, 1] < 0).all(), "unit 1 must be dead for every sample"
    assert (v["Z"]["grad"][:, 1] == 0).all()
    assert (v["H"]["value"][:, 1] == 0).all()
    assert (v["hidden.weight"]["grad"][1] == 0).all()  # exactly 0: the dead unit never learns
    assert v["hidden.bias"]["grad"][1] == 0
    assert v["out.weight"]["grad"][0, 1] == 0
    # a live unit does learn
    assert v["hidden.weight"]["grad"][0].any()
    # saturated sigmoid: the slope P(1-P) is tiny wherever the logit is large
    P = v["P"]["value"]
    assert (P * (1 - P) < 0.003).all()


def test_softmax_classifier(view):
    v = view("softmax_classifier")
    logits = torch.tensor(v["logits"]["value"], dtype=torch.float64)
    classes = torch.tensor(v["classes"]["value"], dtype=torch.int64)
    batch = logits.shape[0]
    expected = (torch.softmax(logits, dim=1) - torch.nn.functional.one_hot(classes, 3)) / batch
    np.testing.assert_allclose(v["logits"]["grad"], expected.numpy(), rtol=1e-5, atol=1e-7)
    assert v["classes"]["grad"] is None and v["classes"]["requires_grad"] is False
    assert v["probs"]["grad"] is None  # off the path to the loss: no gradient flows


@pytest.mark.parametrize("name", BUNDLED)
def test_every_node_matches_independent_torch(view, name):
    """All values and grads of every bundled preset against torch_reference, in float32 as well.

    (float32, because a saturated sigmoid is exactly 1 in float32 and passes no gradient,
    while float64 still sees a slope of 1e-8; test_properties.py compares in float64.)
    """
    preset = bundled(name)
    wrt = {leaf.name for leaf in preset.leaves if leaf.requires_grad}
    ref_values, ref_grads = ref.gradients(name, initial_values(preset), wrt, dtype=torch.float32)
    v = view(name)
    assert set(v) == set(ref_values)
    for node, info in v.items():
        np.testing.assert_allclose(info["value"], ref_values[node].numpy(), rtol=1e-5, atol=1e-6, err_msg=node)
        if ref_grads[node] is None:
            assert info["grad"] is None, node
        else:
            assert info["grad"] is not None, node
            np.testing.assert_allclose(info["grad"], ref_grads[node].numpy(), rtol=1e-4, atol=1e-6, err_msg=node)


# ---------------------------------------------------------------- SGD and the loss history


def independent_sgd(name: str, lr: float, steps: int) -> tuple[list[float], dict[str, np.ndarray]]:
    """Plain float32 gradient descent on the hand-written reference: the losses and final leaves."""
    preset = bundled(name)
    trainable = [leaf.name for leaf in preset.leaves if leaf.requires_grad]
    leaves = {k: torch.tensor(a) for k, a in initial_values(preset).items()}
    losses = []
    for i in range(steps + 1):
        for k in trainable:
            leaves[k] = leaves[k].detach().requires_grad_(True)
        loss = ref.REFERENCES[name](leaves)[ref.OUTPUTS[name]]
        losses.append(loss.item())
        if i == steps:
            break
        loss.backward()
        with torch.no_grad():
            for k in trainable:
                leaves[k] = leaves[k] - lr * leaves[k].grad
    return losses, {k: t.detach().numpy() for k, t in leaves.items()}


def test_sgd_step_is_theta_minus_lr_grad():
    session = Session(bundled("simple_nn"))
    before = {leaf.name: np.array(session.snapshot.node(leaf.name).value) for leaf in session.preset.leaves}
    grads_before = {leaf.name: session.snapshot.node(leaf.name).grad for leaf in session.preset.leaves}
    session.step(0.1)
    after = session.snapshot
    _, expected = independent_sgd("simple_nn", 0.1, 1)
    for name, old in before.items():
        node = after.node(name)
        if grads_before[name] is None:
            assert np.array_equal(node.value, old), f"{name} has no grad and must not move"
        else:
            np.testing.assert_allclose(node.value, old - 0.1 * grads_before[name], rtol=1e-6, atol=1e-7, err_msg=name)
        np.testing.assert_allclose(node.value, expected[name], rtol=1e-5, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("name", ["simple_nn", "linear_regression", "softmax_classifier"])
def test_cli_steps_match_independent_sgd(name, capsys):
    lr = 0.1 if name == "simple_nn" else 0.01
    assert main(["show", name, "--steps", "4", "--lr", str(lr), "--format", "json"]) == 0
    view, data = view_of_json(capsys.readouterr().out)
    losses, leaves = independent_sgd(name, lr, 4)
    assert len(data["loss_history"]) == 5  # the loss before any step, then after each of the 4
    np.testing.assert_allclose(data["loss_history"], losses, rtol=1e-5)
    for leaf, expected in leaves.items():
        np.testing.assert_allclose(view[leaf]["value"], expected, rtol=1e-5, atol=1e-6, err_msg=leaf)
    np.testing.assert_allclose(view[bundled(name).output]["value"], losses[-1], rtol=1e-5)


def test_simple_nn_loss_decreases(capsys):
    assert main(["show", "simple_nn", "--steps", "10", "--lr", "0.1", "--format", "json"]) == 0
    history = view_of_json(capsys.readouterr().out)[1]["loss_history"]
    assert len(history) == 11
    assert all(b < a for a, b in zip(history, history[1:])), history
    # at the preset's own learning rate, training still ends lower than it started
    assert main(["show", "simple_nn", "--steps", "10", "--format", "json"]) == 0
    history = view_of_json(capsys.readouterr().out)[1]["loss_history"]
    assert len(history) == 11 and history[-1] < history[0] / 2


def test_loss_history_without_steps_is_the_current_loss(capsys):
    assert main(["show", "linear_regression", "--format", "json"]) == 0
    _, data = view_of_json(capsys.readouterr().out)
    assert data["loss_history"] == [84.5]
    assert data["preset"] == "linear_regression" and data["output"] == "J"
    assert set(data["nodes"][0]) == {
        "name",
        "expr",
        "kind",
        "shape",
        "value",
        "grad",
        "requires_grad",
        "grad_fn",
        "inputs",
    }


# ---------------------------------------------------------------- the installed commands


def _run(*cmd: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "default"}  # a leaked warning would show on stderr
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=Path(cmd[0]).anchor)


def test_console_script_prints_acceptance_values():
    script = Path(sys.executable).with_name("backprop-tui")
    result = _run(str(script), "show", "linear_regression", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    v, _ = view_of_json(result.stdout)
    assert values(v, "c", "f", "d", "J") == [-9.0, -8.0, -13.0, 84.5]
    assert grads(v, "w", "b", "x") == [39.0, -13.0, None]


def test_python_dash_m_prints_acceptance_values():
    result = _run(sys.executable, "-m", "backprop_tui", "show", "simple_nn", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    v, _ = view_of_json(result.stdout)
    np.testing.assert_allclose(v["J"]["value"], 0.0130999, rtol=1e-5)
    np.testing.assert_allclose(v["linear3.bias"]["grad"], [-0.0279205], rtol=2e-5)
