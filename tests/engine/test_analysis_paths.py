"""Paths from a leaf element to the output: products of local derivatives that add up to the grad."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backprop_tui.engine import Session, load_preset, resolve_preset
from backprop_tui.engine.analysis.live import AnalysisError, FrozenState, private_graph
from backprop_tui.engine.analysis.paths import paths


def session(name: str) -> Session:
    return Session(load_preset(resolve_preset(name)))


def test_scalar_chain_has_one_path_whose_product_is_216():
    p = paths(session("scalar_chain"), "x")
    assert p.n_paths == 1 and p.n_routes == 1 and p.listed
    (path,) = p.paths
    assert [s.element for s in path.steps] == ["h", "g", "f"]
    assert [s.local for s in path.steps] == [1.0, 12.0, 18.0]
    assert path.product == 216.0 and p.total == 216.0 == p.grad
    assert path.text == "x → h → g → f: 1 × 12 × 18 = 216"


@pytest.mark.parametrize("y", [3.0, -2.5, 0.0])
def test_gradient_accumulation_has_two_paths_y_and_1(y):
    s = session("gradient_accumulation")
    s.set_element("y", (), y)
    p = paths(s, "x")
    assert p.n_paths == 2
    assert sorted(path.product for path in p.paths) == sorted([y, 1.0])  # through p, and direct
    assert [r.nodes for r in p.routes] == [("x", "p", "f"), ("x", "f")]
    assert p.total == y + 1 == float(s.snapshot.node("x").grad)


def test_tensor_paths_run_through_elements_and_sum_to_the_grad():
    s = session("simple_nn")
    p = paths(s, "linear1.weight", (0, 1))
    assert p.listed and p.n_paths == len(p.paths) == 4
    assert all(path.steps[0].element in ("Z1[0,0]", "Z1[1,0]") and path.steps[-1].element == "J" for path in p.paths)
    for path in p.paths:
        assert path.product == pytest.approx(np.prod([s.local for s in path.steps]), rel=1e-12)
    grad = float(s.snapshot.node("linear1.weight").grad[0, 1])
    assert sum(path.product for path in p.paths) == pytest.approx(grad, rel=1e-5)
    assert p.total == pytest.approx(grad, rel=1e-5)
    # the first factor of a path W1[0,1] -> Z1[i,0] is X[i,1], as Z1 = X W1^T + b1 says
    x = s.snapshot.node("X").value
    assert {(path.steps[0].element, path.steps[0].local) for path in p.paths} == {
        ("Z1[0,0]", x[0, 1]),
        ("Z1[1,0]", x[1, 1]),
    }


def test_paths_of_an_input_that_does_not_require_grad():
    s = session("linear_regression")
    p = paths(s, "x")
    assert p.grad is None  # the snapshot shows no grad for x
    assert p.total == p.derivative == -39.0  # ∂J/∂x = d·w, what torch would give with requires_grad


def test_many_paths_give_a_summary_with_exact_sums():
    s = session("deep_chain")
    p = paths(s, "w", max_paths=64)
    assert p.n_paths == 250 and p.paths == () and not p.listed
    assert "more than 64 to list" in p.summary
    assert p.n_routes == 250 and p.routes == ()  # more routes than MAX_ROUTES as well
    assert p.total == pytest.approx(float(s.snapshot.node("w").grad), rel=1e-4)


def test_routes_are_summarised_with_their_counts_and_sums():
    s = session("softmax_classifier")
    p = paths(s, "classifier.bias", (1,), max_paths=2)
    assert not p.listed and p.n_paths == 4  # one path through each sample's logit
    (route,) = p.routes
    assert route.nodes == ("classifier.bias", "logits", "loss") and route.n_paths == 4
    logits = torch.tensor(s.snapshot.node("logits").value, dtype=torch.float64)
    expected = (torch.softmax(logits, dim=1)[:, 1] - torch.tensor([0.0, 1.0, 0.0, 1.0])).mean()
    assert route.total == pytest.approx(float(expected), rel=1e-5)


def test_large_tensors_give_routes_without_element_paths():
    p = paths(session("mlp_784"), "linear1.weight", (0, 0))
    assert p.n_paths is None and p.total is None
    assert [r.nodes for r in p.routes] == [("linear1.weight", "Z1", "A1", "Z2", "A2", "logits", "loss")]
    assert "too large" in p.summary and p.derivative == p.grad


def test_a_dead_relu_cuts_every_element_path():
    s = session("dead_relu")
    p = paths(s, "hidden.bias", (1,))
    assert p.n_paths == 0 and p.total == 0.0 == p.grad
    assert "dead ReLU" in p.summary


def test_bad_elements_are_refused():
    s = session("simple_nn")
    with pytest.raises(AnalysisError, match="choose one element"):
        paths(s, "linear1.weight")
    with pytest.raises(AnalysisError, match="not an element"):
        paths(s, "linear1.weight", (3, 0))
    with pytest.raises(AnalysisError, match="unknown leaf"):
        paths(s, "Z1", (0, 0))


@pytest.mark.parametrize("preset", ["simple_nn", "dead_relu", "softmax_classifier", "linear_regression"])
def test_an_inputs_derivative_is_what_backward_gives_when_it_requires_grad(preset):
    # an input's ∂J/∂x is the last backprop step done on its consumers' local steps (no
    # pass of its own): it must equal torch's backward with the input requiring grad
    s = session(preset)
    inputs = [leaf for leaf in s.preset.leaves if leaf.dtype == "float" and not s.requires_grad[leaf.name]]
    assert inputs
    for leaf in inputs:
        state = FrozenState.of(s)
        values = {name: v.clone().requires_grad_(name == leaf.name or s.requires_grad[name]) if v.is_floating_point()
                  else v.clone() for name, v in s.values.items()}
        graph = private_graph(s.preset)
        trace = graph.forward(values, {name: v.requires_grad for name, v in values.items()})
        (expected,) = torch.autograd.grad(trace.output, trace.tensors[leaf.name])
        for flat in range(expected.numel()):
            index = tuple(int(i) for i in np.unravel_index(flat, tuple(expected.shape)))
            p = paths(state, leaf.name, index)
            assert p.grad is None
            assert p.derivative == pytest.approx(float(expected.reshape(-1)[flat]), rel=1e-6, abs=1e-12), (
                leaf.name,
                index,
            )
            if p.total is not None:
                assert p.total == pytest.approx(p.derivative, rel=1e-5, abs=1e-9)
        assert len(state.lives) == 1  # the one pass every analysis of the state shares


def test_a_path_count_past_2_to_the_53_is_not_printed_as_exact():
    """16 layers h = W @ h with W all ones [10, 10]: 10^16 element paths from x[0] to J, more
    than float64 counts exactly; the count is given as about that many, never as a whole number."""
    from backprop_tui.engine import parse_preset

    steps = "".join(f'[[steps]]\nname = "h{i + 1}"\nexpr = "W @ h{i}"\n' for i in range(1, 16))
    text = (
        'output = "J"\n[tensors.x]\nrole = "input"\nvalue = [1.0, 0, 0, 0, 0, 0, 0, 0, 0, 0]\n'
        '[tensors.W]\nrole = "parameter"\nshape = [10, 10]\ninit = "ones"\n'
        '[[steps]]\nname = "h1"\nexpr = "W @ x"\n' + steps + '[[steps]]\nname = "J"\nexpr = "sum(h16)"\n'
    )
    p = paths(Session(parse_preset(text)), "x", index=(0,))
    assert p.n_paths is None and p.paths == () and not p.listed
    assert p.summary.startswith("about 1e+16 paths from x[0] to J (too many to count exactly)")
    assert p.total == pytest.approx(1e16) and p.derivative == pytest.approx(1e16, rel=1e-6)
