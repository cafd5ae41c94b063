"""Property tests: for random leaf values of every bundled preset, the engine's gradients
equal (a) the hand-written torch computation of torch_reference.py in float64 and
(b) central finite differences in float64 of that computation (no autograd at all).

Leaves are drawn generically from each preset's own leaves and shapes: small float
tensors element by element in [-2, 2]; large ones (mlp_784) as the preset's values plus
seeded noise of their own scale; class indices within the preset's range. Values near a
ReLU's kink are skipped (`assume`), as there the derivative is a convention.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import torch_reference as ref
from backprop_tui.engine import Graph, Preset
from engine_support import BUNDLED, bundled

SMALL = 64  # leaves with at most this many elements are drawn element by element
FD_SAMPLES = 4  # elements per leaf checked by finite differences when a leaf is large
KINK = 1e-5  # |z| below this at a ReLU input: skip the example


@functools.lru_cache(maxsize=None)
def graph(name: str) -> Graph:
    return Graph(bundled(name))


def leaf_strategy(leaf) -> st.SearchStrategy[np.ndarray]:
    initial = np.asarray(leaf.initial)
    if leaf.dtype == "int":  # class indices: stay within the classes the preset uses
        return hnp.arrays(np.int64, leaf.shape, elements=st.integers(0, int(initial.max())))
    if initial.size <= SMALL:
        element = st.floats(-2, 2, width=32, allow_subnormal=False)
        return hnp.arrays(np.float32, leaf.shape, elements=element)
    scale = float(initial.std()) or 1.0

    def perturbed(seed: int) -> np.ndarray:
        noise = np.random.default_rng(seed).standard_normal(leaf.shape)
        return (initial + 0.5 * scale * noise).astype(np.float32)

    return st.integers(0, 2**32 - 1).map(perturbed)


def values_strategy(preset: Preset) -> st.SearchStrategy[dict[str, np.ndarray]]:
    return st.fixed_dictionaries({leaf.name: leaf_strategy(leaf) for leaf in preset.leaves})


def float_leaves(preset: Preset) -> list[str]:
    return [leaf.name for leaf in preset.leaves if leaf.dtype == "float"]


def engine_snapshot(name: str, values: dict[str, np.ndarray], wrt: set[str]):
    preset = bundled(name)
    tensors = {k: torch.from_numpy(v.copy()) for k, v in values.items()}
    return graph(name).compute(tensors, {leaf.name: leaf.name in wrt for leaf in preset.leaves})


def assert_close32(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    """float32 (engine) against float64: relative, plus an absolute floor at the tensor's scale."""
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=1e-3, atol=1e-4 * scale, err_msg=what)


def skip_kinks(name: str, ref_values: dict[str, torch.Tensor]) -> None:
    for step in ref.KINKS.get(name, ()):
        assume(float(ref_values[step].abs().min()) > KINK)


SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def examples(name: str) -> int:
    return 12 if name in ("mlp_784", "deep_chain") else 40


# ---------------------------------------------------------------- the references themselves


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_preset_has_a_hand_written_reference(name):
    preset = bundled(name)
    assert name in ref.REFERENCES, f"write a reference for the new preset {name!r} in torch_reference.py"
    assert ref.OUTPUTS[name] == preset.output
    steps = ref.REFERENCES[name](ref.as_tensors({leaf.name: leaf.initial for leaf in preset.leaves}))
    assert list(steps) == [s.name for s in preset.steps]
    for s in preset.steps:
        assert tuple(steps[s.name].shape) == preset.shapes[s.name], s.name


# ---------------------------------------------------------------- the properties


def run_property(name: str, data) -> None:
    preset = bundled(name)
    values = data.draw(values_strategy(preset), label="leaves")
    wrt = set(float_leaves(preset))  # every float leaf requires grad, inputs included
    ref_values, ref_grads = ref.gradients(name, values, wrt)
    assume(bool(torch.isfinite(ref_values[preset.output]).all()))
    skip_kinks(name, ref_values)

    snapshot = engine_snapshot(name, values, wrt)
    assert [n.name for n in snapshot.nodes] == [*preset.leaf_names, *(s.name for s in preset.steps)]
    for node in snapshot.nodes:
        assert_close32(node.value, ref_values[node.name].numpy(), f"value of {node.name}")
        if ref_grads[node.name] is None:
            assert node.grad is None, f"{node.name} should have no gradient"
        else:
            assert node.grad is not None, f"{node.name} should have a gradient"
            assert_close32(node.grad, ref_grads[node.name].numpy(), f"grad of {node.name}")

    # finite differences, on every element of small leaves and a drawn sample of large ones
    for leaf in float_leaves(preset):
        shape = values[leaf].shape
        all_indices = list(np.ndindex(*shape))
        if len(all_indices) > 2 * FD_SAMPLES:
            picks = data.draw(st.lists(st.integers(0, len(all_indices) - 1), min_size=FD_SAMPLES, max_size=FD_SAMPLES), label=f"{leaf} indices")
            all_indices = [all_indices[i] for i in picks]
        engine_grad = snapshot.node(leaf).grad
        ref_grad = ref_grads[leaf].numpy()
        scale = max(1.0, float(np.abs(ref_grad).max(initial=0.0)))
        for index in all_indices:
            fd = ref.finite_difference(name, values, leaf, index)
            # the float64 reference agrees with finite differences tightly ...
            assert abs(ref_grad[index] - fd) <= 1e-5 * scale, f"reference d/d{leaf}{list(index)}: {ref_grad[index]} vs {fd}"
            # ... and the engine's float32 gradient agrees with them to float32 accuracy
            assert abs(engine_grad[index] - fd) <= 1e-3 * abs(fd) + 1e-4 * scale, (
                f"engine d/d{leaf}{list(index)} = {engine_grad[index]}, finite differences {fd}"
            )


def make_property_test(name: str):
    @settings(max_examples=examples(name), **SETTINGS)
    @given(data=st.data())
    def test(data):
        run_property(name, data)

    test.__name__ = f"test_gradients_of_{name}_match_float64_torch_and_finite_differences"
    return test


for _name in BUNDLED:
    globals()[f"test_gradients_of_{_name}_match_float64_torch_and_finite_differences"] = make_property_test(_name)


# ---------------------------------------------------------------- a property of the session


@settings(max_examples=30, deadline=None)
@given(
    w=st.floats(-5, 5, width=32),
    b=st.floats(-5, 5, width=32),
    x=st.floats(-5, 5, width=32),
    y=st.floats(-5, 5, width=32),
)
def test_linear_regression_closed_form(w, b, x, y):
    """J = (wx + b - y)^2 / 2, so dJ/dw = d*x and dJ/db = d with d = wx + b - y."""
    from backprop_tui.engine import Session

    session = Session(bundled("linear_regression"))
    for name, value in (("w", w), ("b", b), ("x", x), ("y", y)):
        session.set_element(name, (), value)
    snap = session.snapshot
    d = (np.float64(w) * x + b) - y
    scale = 1.0 + abs(d) * (1 + abs(x))
    assert abs(snap.node("d").scalar() - d) <= 1e-5 * scale
    assert abs(snap.node("w").scalar_grad() - d * x) <= 1e-5 * scale * (1 + abs(x))
    assert abs(snap.node("b").scalar_grad() - d) <= 1e-5 * scale
    assert snap.node("x").grad is None and snap.node("y").grad is None
