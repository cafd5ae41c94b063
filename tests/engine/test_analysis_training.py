"""Training: N SGD steps equal to the session's, cancellation, and .grad accumulating without zero_grad."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backprop_tui.engine import Session, load_preset, resolve_preset
from backprop_tui.engine.analysis.live import AnalysisError
from backprop_tui.engine.analysis.training import accumulate_grads, train


def session(name: str) -> Session:
    return Session(load_preset(resolve_preset(name)))


@pytest.mark.parametrize("name", ["linear_regression", "simple_nn", "softmax_classifier"])
def test_training_equals_the_sessions_sgd_steps(name):
    s = session(name)
    result = train(s, 5)
    assert result.completed == 5 and result.stopped == "" and result.zero_grad
    assert s.steps_taken == 0  # the session itself is untouched
    for _ in range(5):
        s.step()
    assert result.losses == tuple(s.loss_history)
    for leaf, value in result.values.items():
        np.testing.assert_array_equal(value, s.values[leaf].numpy())


def test_without_zero_grad_the_grad_is_the_running_sum():
    s = session("linear_regression")
    result = train(s, 3, zero_grad=False)
    # plain torch: the same loop with no zero_grad(), so w.grad keeps adding up
    x, y = torch.tensor(-3.0), torch.tensor(5.0)
    w = torch.tensor(3.0, requires_grad=True)
    b = torch.tensor(1.0, requires_grad=True)
    losses, used = [], []
    for _ in range(3):
        J = (w * x + b - y) ** 2 / 2
        losses.append(J.item())
        J.backward()
        used.append((w.grad.item(), b.grad.item()))
        with torch.no_grad():
            w -= 0.01 * w.grad
            b -= 0.01 * b.grad
    assert [st.loss for st in result.steps] == pytest.approx(losses, rel=1e-6)
    assert [(float(st.grads["w"]), float(st.grads["b"])) for st in result.steps] == pytest.approx(used, rel=1e-5)
    assert used[1][0] > used[0][0]  # 39, then 39 + 35.1: accumulation, not a fresh gradient
    assert result.steps[1].grad_norm > result.steps[1].fresh_grad_norm
    assert float(result.values["w"]) == pytest.approx(w.item(), rel=1e-6)
    fresh = train(s, 3)
    assert fresh.losses[-1] != result.losses[-1]


def test_the_callback_sees_each_step_and_can_cancel():
    seen = []

    def on_step(step):
        seen.append(step.step)
        return step.step < 4

    result = train(session("simple_nn"), 100, on_step=on_step)
    assert seen == [1, 2, 3, 4] and result.stopped == "cancelled"
    assert result.completed == 4 and len(result.losses) == 5


def test_divergence_stops_the_run():
    result = train(session("linear_regression"), 200, lr=1.0)
    assert result.stopped.startswith("diverged") and result.completed < 200


def test_refusals():
    with pytest.raises(AnalysisError, match="nothing to train"):
        s = session("scalar_chain")
        s.toggle_requires_grad("x")
        train(s, 1)
    with pytest.raises(AnalysisError, match="learning rate"):
        train(session("scalar_chain"), 1, lr=-1)
    with pytest.raises(AnalysisError, match="steps"):
        train(session("scalar_chain"), -1)


def test_backward_twice_without_zeroing_doubles_the_grad():
    acc = accumulate_grads(session("scalar_chain"), times=3)
    assert [float(a["x"]) for a in acc.after] == [216.0, 432.0, 648.0]
    assert acc.lines == ("x.grad: 216, then 432 (2×), then 648 (3×)",)
    nn = accumulate_grads(session("simple_nn"), times=2)
    np.testing.assert_allclose(nn.after[1]["linear1.weight"], 2 * nn.single["linear1.weight"], rtol=1e-6)
    first = nn.single["linear1.weight"][0, 0]
    assert nn.lines[0] == f"linear1.weight.grad[0,0]: {first:.6g}, then {nn.after[1]['linear1.weight'][0, 0]:.6g} (2×)"
    assert len(nn.lines) == 6  # one per leaf that requires grad


def test_a_big_network_shows_its_first_leaves_and_says_how_many_more(monkeypatch):
    from backprop_tui.engine.analysis import training

    monkeypatch.setattr(training, "SHOWN_LEAVES", 4)
    acc = accumulate_grads(session("simple_nn"), times=2)  # 6 leaves require grad
    assert [line.split(".grad")[0] for line in acc.lines[:4]] == list(acc.single)[:4]
    assert acc.lines[4:] == ("… and 2 more leaves, each alike",)


def test_a_frozen_copy_does_not_follow_later_edits():
    from backprop_tui.engine.analysis.live import FrozenState

    s = session("linear_regression")
    frozen = FrozenState.of(s)
    s.set_element("w", (), 0.0)  # the UI edits while a worker trains on the copy
    result = train(frozen, 1)
    assert result.losses[0] == 84.5 and float(result.values["w"]) == pytest.approx(3 - 0.01 * 39)
