"""The fast path (compiled steps, batched snapshot copies, cached grad_fn chains) changes nothing.

A Graph built from a Preset without load-time shapes runs every step through
`evaluate` + `TorchOps`, the path that checks everything; the same preset as loaded
runs the compiled closures. Both must give the same snapshot, bit for bit.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from backprop_tui.engine import ComputeError, EditError, Graph, Session, parse_preset
from backprop_tui.engine.snapshot import Node, Snapshot
from engine_support import BUNDLED, bundled

MANY_FORMS = """
name = "many_forms"
output = "loss"

[tensors.X]
role = "input"
value = [[1.0, -2.0], [0.5, 3.0], [-1.5, 0.25]]

[tensors.y]
role = "target"
value = [[0.2], [0.9], [0.4]]

[tensors.W]
role = "parameter"
value = [[0.3, -0.7], [1.1, 0.4]]

[tensors.classes]
role = "target"
dtype = "int"
value = [1, 0, 1]

[modules.head]
type = "Linear"
in_features = 2
out_features = 1
seed = 3

[[steps]]
name = "two"
expr = "2 * 3 - 4"

[[steps]]
name = "same"
expr = "X"

[[steps]]
name = "Z"
expr = "-(X @ W.T) / 2 + 1"

[[steps]]
name = "S"
expr = "softmax(Z, dim=1) + log_softmax(Z) * two ** 2"

[[steps]]
name = "p"
expr = "sigmoid(head(tanh(S)))"

[[steps]]
name = "r"
expr = "sum(relu(Z) ** 2, dim=0, keepdim=True) + sum(mean(exp(Z) * abs(Z), dim=1))"

[[steps]]
name = "fit"
expr = "mse(p, y) + bce(p, y, reduction='sum') + bce_with_logits(p * 3 - 1, y) + cross_entropy(Z, classes)"

[[steps]]
name = "joined"
expr = "cat(gelu(Z), gelu(Z, approximate='tanh'), leaky_relu(Z, negative_slope=0.2), transpose(W, 0, -1), dim=0)"

[[steps]]
name = "loss"
expr = "fit + sqrt(mean(r ** 2) + 1) + log(1 + sum(same ** 2)) + mean(flatten(joined, start_dim=0) ** 2)"
"""


def checked_graph(preset) -> Graph:
    """The same preset, but without its load-time shapes: every step goes through TorchOps."""
    graph = Graph(dataclasses.replace(preset, shapes={}))
    assert graph._runs[0][1].__qualname__.startswith("Graph._checked_run")
    return graph


def assert_same(a: Snapshot, b: Snapshot) -> None:
    assert [n.name for n in a.nodes] == [n.name for n in b.nodes]
    for x, y in zip(a.nodes, b.nodes):
        assert (x.expr, x.kind, x.inputs, x.consumers, x.shape, x.dtype) == (
            y.expr,
            y.kind,
            y.inputs,
            y.consumers,
            y.shape,
            y.dtype,
        )
        assert (x.requires_grad, x.grad_fn, x.note, x.module) == (y.requires_grad, y.grad_fn, y.note, y.module), x.name
        assert x.value.dtype == y.value.dtype and x.value.shape == y.value.shape
        np.testing.assert_array_equal(x.value, y.value, err_msg=x.name)
        assert (x.grad is None) == (y.grad is None), x.name
        if x.grad is not None:
            np.testing.assert_array_equal(x.grad, y.grad, err_msg=x.name)
    assert a.autograd == b.autograd
    assert a.warnings == b.warnings


def compute_both(preset, requires_grad=None, values=None):
    fast, slow = Graph(preset), checked_graph(preset)
    values = values or fast.initial_values()
    requires_grad = requires_grad or fast.initial_requires_grad()
    return fast.compute(values, requires_grad), slow.compute(values, requires_grad)


@pytest.mark.parametrize("name", BUNDLED)
def test_compiled_steps_equal_the_checked_path_on_every_bundled_preset(name):
    assert_same(*compute_both(bundled(name)))


@pytest.mark.parametrize("name", ["simple_nn", "deep_chain", "softmax_classifier"])
def test_equal_with_every_float_leaf_requiring_grad(name):
    preset = bundled(name)
    flags = {leaf.name: leaf.dtype == "float" for leaf in preset.leaves}
    assert_same(*compute_both(preset, requires_grad=flags))


def test_equal_on_every_expression_form():
    preset = parse_preset(MANY_FORMS)
    fast, slow = compute_both(preset)
    assert_same(fast, slow)
    assert fast.node("two").scalar() == 2.0 and fast.node("two").grad is None


def test_every_node_is_read_only_and_the_arrays_have_their_shapes():
    snapshot = Graph(bundled("mlp_784")).compute(*_initial(bundled("mlp_784")))
    for node in snapshot.nodes:
        assert not node.value.flags.writeable
        assert node.value.shape == node.shape
        assert node.grad is None or (not node.grad.flags.writeable and node.grad.shape == node.shape)


def _initial(preset):
    graph = Graph(preset)
    return graph.initial_values(), graph.initial_requires_grad()


def test_a_snapshot_does_not_change_when_later_edits_are_made():
    session = Session(bundled("deep_chain"))
    first = session.snapshot
    x_before = first.node("x").grad.copy()
    J_before = first.loss
    session.set_element("w", (), 0.9)
    session.toggle_requires_grad("x")
    assert first.loss == J_before
    np.testing.assert_array_equal(first.node("x").grad, x_before)
    assert session.snapshot.node("x").grad is None


def test_grad_fn_chains_follow_a_requires_grad_change_and_come_back():
    session = Session(bundled("simple_nn"))
    before = session.snapshot.autograd
    session.toggle_requires_grad("X")
    with_x = session.snapshot.autograd
    assert with_x != before
    session.undo()
    assert session.snapshot.autograd == before
    slow = checked_graph(bundled("simple_nn"))
    flags = dict(session.requires_grad, X=True)
    assert slow.compute(session.values, flags).autograd == with_x


def test_nan_warnings_are_the_same_on_both_paths():
    preset = bundled("scalar_chain")
    fast, slow = Graph(preset), checked_graph(preset)
    values = {"x": torch.tensor(float("inf"))}
    a = fast.compute(values, {"x": True})
    b = slow.compute(values, {"x": True})
    assert a.warnings == b.warnings and a.warnings


def test_a_torch_error_in_a_compiled_step_is_worded_as_the_checked_path_words_it():
    preset = bundled("softmax_classifier")
    fast, slow = Graph(preset), checked_graph(preset)
    values = fast.initial_values()
    values["classes"] = torch.tensor([0, 1, 7, 1])  # class 7 of 3
    with pytest.raises(ComputeError) as fast_error:
        fast.compute(values, fast.initial_requires_grad())
    with pytest.raises(ComputeError) as slow_error:
        slow.compute(values, slow.initial_requires_grad())
    assert str(fast_error.value) == str(slow_error.value)
    assert "loss" in str(fast_error.value)


def test_a_refused_edit_leaves_the_fast_path_working():
    session = Session(bundled("softmax_classifier"))
    loss = session.snapshot.loss
    with pytest.raises(EditError):
        session.set_element("classes", (2,), 7)
    assert session.graph.compute(session.values, session.requires_grad).loss == loss
    session.set_element("classifier.weight", (0, 0), 0.5)
    assert_same(session.snapshot, checked_graph(session.preset).compute(session.values, session.requires_grad))


def test_parameters_are_reloaded_after_an_in_place_change_of_the_same_tensor():
    preset = bundled("simple_nn")
    graph = Graph(preset)
    values, flags = graph.initial_values(), graph.initial_requires_grad()
    first = graph.compute(values, flags).loss
    values["linear1.weight"][0, 0] = 3.0  # same tensor object, new version
    second = graph.compute(values, flags).loss
    assert second != first
    assert second == checked_graph(preset).compute(values, flags).loss


def test_trusted_nodes_equal_nodes_built_the_ordinary_way():
    snapshot = Graph(bundled("simple_nn")).compute(*_initial(bundled("simple_nn")))
    for node in snapshot.nodes:
        fields = {f.name: getattr(node, f.name) for f in dataclasses.fields(Node)}
        ordinary = Node(**fields)
        assert ordinary == node and vars(ordinary) == vars(node)
        with pytest.raises(dataclasses.FrozenInstanceError):
            node.name = "changed"


@pytest.mark.parametrize("name", BUNDLED)
def test_compute_equals_forward_backward_and_snapshot_of_the_trace(name):
    """compute() asks torch.autograd.grad; forward() + backward() fills .grad through retain_grad."""
    preset = bundled(name)
    graph = Graph(preset)
    values, flags = graph.initial_values(), graph.initial_requires_grad()
    assert_same(graph.compute(values, flags), _snapshot_of(preset, values, flags))


def _snapshot_of(preset, values, flags):
    graph = Graph(preset)
    trace = graph.forward(values, flags)
    if trace.output.requires_grad:
        trace.output.backward()
    return graph.snapshot(trace, flags)
