"""Every teaching analysis on the presets of indexing, reshapes and routing reductions
either works (with numbers that agree with the snapshot) or says in one line why it does
not apply; paths through a 32x64 batch reduction are summarised, never listed."""

from __future__ import annotations

import numpy as np
import pytest

from backprop_tui.engine import Session
from backprop_tui.engine.analysis import contributions, flags, gradcheck, local, loss_slice, paths, per_sample, stepper
from backprop_tui.engine.analysis.live import AnalysisError
from engine_support import bundled

NEW_PRESETS = ["makemore_backprop", "attention_head", "mlp_1m", "batchnorm", "residual_layernorm", "tiny_cnn"]


@pytest.fixture(scope="module", params=NEW_PRESETS)
def session(request):
    return Session(bundled(request.param))


def test_chain_rule_of_every_step_gives_the_snapshots_gradient(session):
    for step in session.preset.steps:
        rule = local.chain_rule(session, step.name)
        assert rule.text, step.name
        np.testing.assert_allclose(
            rule.grad, session.snapshot.node(step.name).grad, rtol=1e-5, atol=1e-7, err_msg=step.name
        )
        assert local.local_derivatives(session, step.name), step.name


def test_contributions_add_up_to_each_gradient(session):
    for name, c in contributions.contributions(session).items():
        if c.grad is None:
            assert c.reason, name  # an int tensor or a node off the path: says why
        elif c.contributions:
            total = sum(np.asarray(part.value, dtype=np.float64) for part in c.contributions)
            np.testing.assert_allclose(total, c.grad, rtol=1e-4, atol=1e-6, err_msg=name)


def test_paths_are_summarised_and_their_sum_is_the_gradient(session):
    for leaf in [leaf.name for leaf in session.preset.leaves if leaf.requires_grad]:
        index = (0,) * len(session.preset.leaf(leaf).shape)
        p = paths.paths(session, leaf, index)
        assert len(p.paths) <= paths.MAX_PATHS
        if not p.paths:
            assert p.summary, leaf
        assert p.grad == pytest.approx(float(session.snapshot.node(leaf).grad[index]), rel=1e-5, abs=1e-8)


def test_numeric_checks_agree_with_autograd(session):
    check = gradcheck.gradcheck(session)
    assert check.elements and check.passed, check.summary  # max routing is a kink: flagged, not failed
    for leaf in [leaf.name for leaf in session.preset.leaves if leaf.requires_grad]:
        index = (0,) * len(session.preset.leaf(leaf).shape)
        s = loss_slice.loss_slice(session, leaf, index)
        assert s.slope == pytest.approx(float(session.snapshot.node(leaf).grad[index]), rel=1e-5, abs=1e-8)


def test_step_through_covers_every_node(session):
    names = [n.name for n in session.snapshot.nodes]
    assert [s.node for s in stepper.forward_steps(session)] == names
    backward = stepper.backward_steps(session)
    assert backward[0].node == session.preset.output
    assert {s.node for s in backward} <= set(names)


def test_flags_run(session):
    for flag in flags.flags(session):
        assert flag.reason and "\n" not in flag.reason


def test_per_sample_works_or_says_why_not(session):
    try:
        shares = per_sample.per_sample(session)
    except AnalysisError as exc:
        # makemore_backprop reshapes to a batch of 32 and normalises over the batch:
        # one sample alone is not a run of the same graph; tiny_cnn's batch is one image
        reasons = ("does not run on one sample alone", "the batch holds a single sample")
        assert any(reason in str(exc) for reason in reasons) and "\n" not in str(exc)
        if session.preset.name == "tiny_cnn":
            assert "single sample" in str(exc)
    else:
        assert shares is not None
