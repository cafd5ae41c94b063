"""Properties over random leaf values: every analysis agrees with the grad autograd computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from backprop_tui.engine import Graph, load_preset, resolve_preset
from backprop_tui.engine.analysis.contributions import contributions
from backprop_tui.engine.analysis.gradcheck import gradcheck
from backprop_tui.engine.analysis.live import FrozenState
from backprop_tui.engine.analysis.paths import paths

PRESETS = {
    name: load_preset(resolve_preset(name)) for name in ("gradient_accumulation", "linear_regression", "simple_nn")
}


@st.composite
def states(draw):
    preset = PRESETS[draw(st.sampled_from(sorted(PRESETS)))]
    initial = FrozenState.initial(preset)
    values = {}
    for leaf in preset.leaves:
        floats = st.floats(-3, 3, width=32).filter(lambda v: abs(v) > 1e-3)
        values[leaf.name] = torch.from_numpy(draw(arrays(np.float32, leaf.shape, elements=floats)).copy())
    return FrozenState(preset, values, initial.requires_grad)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(state=states())
def test_contributions_paths_and_finite_differences_agree_with_autograd(state):
    snapshot = Graph(state.preset).compute(dict(state.values), dict(state.requires_grad))
    parts = contributions(state)
    for node in snapshot.nodes:
        if node.grad is not None and parts[node.name].total is not None:
            scale = max(1.0, float(np.abs(node.grad).max()))
            np.testing.assert_allclose(parts[node.name].total, node.grad, rtol=1e-5, atol=1e-6 * scale)
    leaf = next(n for n in snapshot.leaves if n.grad is not None)
    index = (0,) * len(leaf.shape)
    p = paths(state, leaf.name, index)
    assert p.total == pytest.approx(float(leaf.grad[index]), rel=1e-4, abs=1e-6)
    check = gradcheck(state)
    assert {e.status for e in check.elements} <= {"ok", "kink"}, [e.reason for e in check.elements if e.status != "ok"]
