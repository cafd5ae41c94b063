"""Random sequences of edits on a Session (hypothesis stateful testing).

Rules: set an element (floats, and class indices in and out of range), nudge one, toggle
requires_grad, reset a leaf, reset all, an SGD step, a new learning rate, undo, redo.
After every rule:

- the session's snapshot equals a fresh computation from its current leaf values and
  requires_grad flags (a Graph of its own that never saw the edits), exactly;
- its values and grads equal the hand-written float64 torch code of torch_reference.py
  (no parser, no graph.py) to float32 accuracy, where that comparison means something;
- undo restores exactly the state before the edit it undoes (values, flags, loss history,
  step count) and redo the state after; an edit that is refused changes nothing.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import torch_reference as ref
from backprop_tui.engine import EditError, Graph, Session
from engine_support import bundled

# Small presets: every rule recomputes the graph, the reference and a fresh graph.
PRESETS = (
    "scalar_chain",
    "linear_regression",
    "simple_nn",
    "gradient_accumulation",
    "dead_relu",
    "softmax_classifier",
    "attention_head",
)
KINK = 1e-5  # |z| at a ReLU input below this: the derivative there is a convention
FLOAT32_MAX = float(np.finfo(np.float32).max)


@functools.lru_cache(maxsize=None)
def fresh_graph(name: str) -> Graph:
    """A graph of its own for the fresh computations, apart from the session's."""
    return Graph(bundled(name))


def state_of(session: Session) -> tuple:
    """Everything undo and redo must restore, as plain copies."""
    return (
        {k: v.clone() for k, v in session.values.items()},
        dict(session.requires_grad),
        list(session.sgd_losses),
        session.steps_taken,
    )


def assert_same_state(actual: tuple, expected: tuple) -> None:
    values, flags, losses, steps = actual
    assert values.keys() == expected[0].keys()
    for name, tensor in values.items():
        assert tensor.dtype == expected[0][name].dtype, name
        assert torch.equal(tensor, expected[0][name]), name
    assert flags == expected[1]
    assert losses == expected[2]
    assert steps == expected[3]


def assert_close32(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=1e-3, atol=1e-4 * scale, err_msg=what)


def reference_is_meaningful(name: str, ref_values, ref_grads) -> bool:
    """False at a ReLU kink, for saturated attention scores, or where exact results leave float32."""
    for step in ref.KINKS.get(name, ()):
        if float(ref_values[step].abs().min()) <= KINK:
            return False
    if name == "attention_head" and float(ref_values["scores"].abs().max()) >= 15:
        return False
    for tensor in [*ref_values.values(), *(g for g in ref_grads.values() if g is not None)]:
        if tensor.is_floating_point() and not float(tensor.abs().max()) <= FLOAT32_MAX / 1e3:
            return False
    return True


class SessionMachine(RuleBasedStateMachine):
    preset_name = "scalar_chain"

    def __init__(self):
        super().__init__()
        self.preset = bundled(self.preset_name)
        self.session = Session(self.preset)
        self.leaves = list(self.preset.leaf_names)
        self.past: list[tuple] = []  # the state before each edit on the undo stack
        self.future: list[tuple] = []  # the state after each edit on the redo stack
        self.refused = 0

    # ------------------------------------------------------------ helpers

    def edit(self, action) -> bool:
        """Run one edit: done, it is undoable; refused, it changes nothing."""
        before = state_of(self.session)
        snapshot_before = self.session.snapshot
        try:
            action()
        except EditError:
            self.refused += 1
            assert_same_state(state_of(self.session), before)
            assert self.session.snapshot is snapshot_before
            return False
        self.past.append(before)
        self.future.clear()
        return True

    def draw_index(self, data, name: str) -> tuple[int, ...]:
        shape = self.session.values[name].shape
        return data.draw(st.tuples(*(st.integers(0, n - 1) for n in shape)), label="index")

    # ------------------------------------------------------------ rules

    @rule(data=st.data())
    def set_element(self, data):
        name = data.draw(st.sampled_from(self.leaves), label="leaf")
        index = self.draw_index(data, name)
        tensor = self.session.values[name]
        if tensor.is_floating_point():
            value = data.draw(st.floats(-3, 3, allow_subnormal=False) | st.sampled_from([0.0, 1e-3]), label="value")
        else:  # class indices: the preset's range and one past it (refused when computed)
            value = data.draw(st.integers(0, int(self.preset.leaf(name).initial.max()) + 1), label="value")
        self.edit(lambda: self.session.set_element(name, index, value))

    @rule(data=st.data(), delta=st.sampled_from([0.01, -0.01, 0.1, -0.1, 1.0, -1.0]))
    def nudge(self, data, delta):
        name = data.draw(st.sampled_from(self.leaves), label="leaf")
        index = self.draw_index(data, name)
        self.edit(lambda: self.session.nudge(name, index, delta))

    @rule(data=st.data())
    def toggle_requires_grad(self, data):
        name = data.draw(st.sampled_from(self.leaves), label="leaf")
        self.edit(lambda: self.session.toggle_requires_grad(name))

    @rule(data=st.data())
    def reset_leaf(self, data):
        name = data.draw(st.sampled_from(self.leaves), label="leaf")
        self.edit(lambda: self.session.reset_leaf(name))

    @rule()
    def reset_all(self):
        if self.edit(self.session.reset_all):
            assert self.session.sgd_losses == [] and self.session.steps_taken == 0

    @rule()
    def sgd_step(self):
        steps = self.session.steps_taken
        if self.edit(self.session.step):  # one more step, and the history ends at the new loss
            assert self.session.steps_taken == steps + 1
            loss = self.session.snapshot.loss
            assert self.session.sgd_losses[-1] == loss or (math.isnan(loss) and math.isnan(self.session.sgd_losses[-1]))

    @rule(lr=st.sampled_from([1e-3, 0.01, 0.1, 0.5]))
    def learning_rate(self, lr):
        self.session.set_learning_rate(lr)
        assert self.session.learning_rate == lr

    @precondition(lambda self: self.session.can_undo)
    @rule()
    def undo(self):
        after = state_of(self.session)
        self.session.undo()
        assert_same_state(state_of(self.session), self.past[-1])
        self.past.pop()
        self.future.append(after)

    @precondition(lambda self: self.session.can_redo)
    @rule()
    def redo(self):
        before = state_of(self.session)
        self.session.redo()
        assert_same_state(state_of(self.session), self.future[-1])
        self.future.pop()
        self.past.append(before)

    # ------------------------------------------------------------ invariants

    @invariant()
    def stacks_match_the_model(self):
        assert len(self.session.undo_stack) == len(self.past)
        assert len(self.session.redo_stack) == len(self.future)

    @invariant()
    def snapshot_equals_a_fresh_computation(self):
        session = self.session
        fresh = fresh_graph(self.preset_name).compute(
            {k: v.clone() for k, v in session.values.items()}, dict(session.requires_grad)
        )
        ours = session.snapshot
        assert [n.name for n in ours.nodes] == [n.name for n in fresh.nodes]
        assert ours.loss == fresh.loss or (math.isnan(ours.loss) and math.isnan(fresh.loss))
        for a, b in zip(ours.nodes, fresh.nodes):
            np.testing.assert_array_equal(a.value, b.value, err_msg=a.name)
            assert (a.grad is None) == (b.grad is None), a.name
            if a.grad is not None:
                np.testing.assert_array_equal(a.grad, b.grad, err_msg=a.name)
        for leaf in self.leaves:  # the leaves shown are the session's values
            np.testing.assert_array_equal(ours.node(leaf).value, session.values[leaf].numpy(), err_msg=leaf)

    @invariant()
    def snapshot_equals_independent_torch(self):
        session = self.session
        values = {k: v.numpy().copy() for k, v in session.values.items()}
        wrt = {name for name, rg in session.requires_grad.items() if rg}
        ref_values, ref_grads = ref.gradients(self.preset_name, values, wrt)
        if not reference_is_meaningful(self.preset_name, ref_values, ref_grads):
            return
        for node in session.snapshot.nodes:
            assert_close32(node.value, ref_values[node.name].numpy(), f"value of {node.name}")
            if ref_grads[node.name] is None:
                assert node.grad is None, f"{node.name} should have no gradient"
            else:
                assert node.grad is not None, f"{node.name} should have a gradient"
                assert_close32(node.grad, ref_grads[node.name].numpy(), f"grad of {node.name}")


def machine_for(name: str) -> type[SessionMachine]:
    return type(f"SessionMachine_{name}", (SessionMachine,), {"preset_name": name})


@pytest.mark.parametrize("name", PRESETS)
def test_random_edits_keep_the_session_equal_to_a_fresh_computation(name):
    machine = machine_for(name)
    machine.TestCase.settings = settings(
        max_examples=8,
        stateful_step_count=20,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    machine.TestCase().runTest()
