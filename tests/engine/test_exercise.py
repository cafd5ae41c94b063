"""The backprop exercise's engine: an answer is an expression in the preset language, judged
by makemore's cmp against autograd, with a computed diagnosis when it is wrong."""

from __future__ import annotations

import json
import re

import pytest
import torch

from backprop_tui.engine import Session, load_preset, parse_preset
from backprop_tui.engine.exercise import Exercise
from backprop_tui.engine.exercise.exercise import recheck
from backprop_tui.engine.exercise.grading import answers_from, grade, read_answer_file
from backprop_tui.engine.exercise.progress import Progress
from engine_support import bundled



@pytest.fixture(scope="module")
def makemore():
    session = Session(bundled("makemore_backprop"))
    return Exercise(session.preset, session.snapshot)


def _exercise(text: str) -> Exercise:
    session = Session(parse_preset(text))
    return Exercise(session.preset, session.snapshot)


def _autograd(ex: Exercise, *nodes: str) -> dict[str, torch.Tensor]:
    return {n: ex.grads[n] for n in nodes}


def test_the_nodes_come_in_backward_order_from_the_output(makemore):
    order = makemore.order
    assert len(order) == 26 and order[0] == "logprobs" and order[-1] == "C"
    assert "loss" not in order and "Xb" not in order and "Yb" not in order  # the output; int tensors
    snapshot_consumers = {n.name: n.consumers for n in makemore.snapshot.nodes}
    for node in order:  # every consumer's gradient is asked before the node's own
        assert all(c == "loss" or order.index(c) < order.index(node) for c in snapshot_consumers[node])


def test_cmp_is_makemores_cmp_against_a_separate_torch_computation(makemore):
    # dprobs = dlogprobs / probs, from autograd's dlogprobs: the same numbers cmp would print
    checked = makemore.check("probs", "dlogprobs / probs", _autograd(makemore, "logprobs"))
    probs = torch.tensor(makemore.snapshot.node("probs").value)
    dlogprobs = torch.tensor(makemore.snapshot.node("logprobs").grad)
    mine = dlogprobs / probs
    grad = torch.tensor(makemore.snapshot.node("probs").grad)
    v = checked.verdict
    assert v.exact == bool(torch.all(mine == grad)) and v.approximate == bool(torch.allclose(mine, grad))
    assert v.maxdiff == (mine - grad).abs().max().item()
    assert v.grads_used == ("logprobs",) and v.accepted


def test_approximate_within_allclose_and_exact_only_bitwise(makemore):
    dh = makemore.grads["h"]
    v = makemore.check("hpreact", "(1.0 - h ** 2) * dh", {"h": dh}).verdict
    assert v.status == "approximate" and not v.exact and 0 < v.maxdiff < 1e-8
    assert makemore.check("W2", "h.T @ dlogits", _autograd(makemore, "logits")).verdict.status == "exact"


def test_answers_use_the_learners_gradients_not_autograds(makemore):
    wrong_dh = makemore.grads["h"] * 2
    v = makemore.check("hpreact", "(1.0 - h ** 2) * dh", {"h": wrong_dh}).verdict
    assert v.status == "wrong"  # the doubled dh is not repaired downstream
    assert "the gradient is 1/2 × your answer" in v.diagnosis


def test_grad_of_name_works_as_d_name(makemore):
    v = makemore.check("probs", "grad(logprobs) / probs", _autograd(makemore, "logprobs")).verdict
    assert v.exact and v.grads_used == ("logprobs",)


def test_a_gradient_not_yet_accepted_is_refused(makemore):
    v = makemore.check("probs", "dlogprobs / probs", {}).verdict
    assert v.status == "error" and "uses dlogprobs, which has no accepted answer yet" in v.diagnosis


# ---------------------------------------------------------------- diagnoses


def test_broadcast_dim_not_summed_names_the_step_and_the_dim(makemore):
    v = makemore.check("bnbias", "dhpreact", _autograd(makemore, "hpreact")).verdict
    assert v.diagnosis == (
        "[32, 64] given, [1, 64] expected: bnbias was broadcast over dim 0 in "
        "`hpreact = bngain * bnraw + bnbias`: sum over it, keepdim"
    )
    v = makemore.check("b1", "dhprebn", _autograd(makemore, "hprebn")).verdict
    assert v.diagnosis == (
        "[32, 64] given, [64] expected: b1 was broadcast over dim 0 in `hprebn = embcat @ W1 + b1`: sum over it"
    )


def test_transpose(makemore):
    v = makemore.check("W2", "dlogits.T @ h", _autograd(makemore, "logits")).verdict
    assert v.diagnosis == "[27, 64] given, [64, 27] expected: it is the transpose of the gradient; add .T"
    square = _exercise(SQUARE)
    v = square.check("W", "dy.T @ x", _autograd(square, "y")).verdict
    assert v.status == "wrong" and v.diagnosis == "it is the transpose of the gradient; add .T"


SQUARE = """
name = "square"
output = "loss"
[tensors.x]
role = "input"
value = [[1.0, 2.0], [3.0, -1.0]]
[tensors.W]
role = "parameter"
value = [[0.5, -2.0], [1.5, 0.25]]
[[steps]]
name = "y"
expr = "x @ W"
[[steps]]
name = "loss"
expr = "sum(y * y * x)"
"""


def test_sign_flipped(makemore):
    v = makemore.check("h", "-(dlogits @ W2.T)", _autograd(makemore, "logits")).verdict
    assert v.diagnosis == "the sign is flipped: the gradient is minus your answer"


def test_off_by_a_constant_factor_says_which(makemore):
    v = makemore.check("probs", "dlogprobs / probs * 32", _autograd(makemore, "logprobs")).verdict
    assert v.diagnosis == "off by a constant factor: the gradient is 1/32 × your answer"
    v = makemore.check("bndiff2", "(2.0 / 31) * bndiff2 ** 0 * dbnvar", _autograd(makemore, "bnvar")).verdict
    assert v.diagnosis == "off by a constant factor: the gradient is 1/2 × your answer"


def test_one_consumer_only_is_computed_on_each_edge(makemore):
    grads = _autograd(makemore, "bnraw", "bndiff2")
    v = makemore.check("bndiff", "2 * bndiff * dbndiff2", grads).verdict
    assert v.diagnosis == (
        "bndiff has 2 consumers; your answer matches the one through bndiff2 only: add the part through bnraw"
    )
    v = makemore.check("bndiff", "bnvar_inv * dbnraw", grads).verdict
    assert "matches the one through bnraw only: add the part through bndiff2" in v.diagnosis
    # and the two parts, each from autograd.grad on its own edge, add up to autograd's gradient
    from backprop_tui.engine.exercise.diagnose import consumer_parts

    parts = consumer_parts(makemore.context("bndiff"))
    assert set(parts) == {"bndiff2", "bnraw"}
    assert torch.allclose(parts["bndiff2"] + parts["bnraw"], makemore.grads["bndiff"], atol=1e-9)


def test_right_except_at_the_argmax():
    ex = _exercise("""
name = "argmax_demo"
output = "loss"
[tensors.x]
role = "parameter"
value = [[1.0, 3.0, 2.0], [0.5, -1.0, 4.0]]
[[steps]]
name = "m"
expr = "max(x, dim=1)"
[[steps]]
name = "loss"
expr = "sum(m * m)"
""")
    v = ex.check("x", "0 * x", {}).verdict
    assert v.diagnosis == (
        "right except at 2 element(s) at the argmax (largest element) of `m = max(x, dim=1)`: the gradient goes there"
    )


def test_right_except_at_a_kink():
    ex = _exercise("""
name = "kink_demo"
output = "loss"
[tensors.x]
role = "parameter"
value = [-1.0, 0.0, 2.0]
[tensors.w]
role = "input"
value = [3.0, 4.0, 5.0]
[[steps]]
name = "h"
expr = "relu(x)"
[[steps]]
name = "loss"
expr = "sum(h * w)"
""")
    v = ex.check("x", "dh * sigmoid(1000 * x)", _autograd(ex, "h")).verdict
    assert v.diagnosis == "right except at 1 element(s) where x is 0, the kink of relu in `h = relu(x)`"


def test_right_except_at_the_kink_of_a_leaky_relu():
    ex = _exercise("""
name = "leaky_kink_demo"
output = "loss"
[tensors.x]
role = "parameter"
value = [-1.0, 0.0, 2.0]
[tensors.w]
role = "input"
value = [3.0, 4.0, 5.0]
[[steps]]
name = "h"
expr = "leaky_relu(x, negative_slope=0.1)"
[[steps]]
name = "loss"
expr = "sum(h * w)"
""")
    # slope 0.1 below 0 and 1 above, but 0.55 at 0, where PyTorch takes 0.1
    v = ex.check("x", "dh * (0.1 + 0.9 * sigmoid(1000 * x))", _autograd(ex, "h")).verdict
    assert v.diagnosis == (
        "right except at 1 element(s) where x is 0, the kink of leaky_relu in `h = leaky_relu(x, negative_slope=0.1)`"
    )


def test_a_wrong_answer_without_a_pattern_says_where_it_differs_most(makemore):
    v = makemore.check("counts_sum", "counts_sum", {}).verdict
    assert v.status == "wrong" and v.diagnosis.startswith("32 of 32 elements differ; the largest difference is at [")


# ---------------------------------------------------------------- the answer file


def test_the_answer_file_checks_each_answer_after_those_it_uses(makemore, tmp_path):
    path = tmp_path / "a.toml"
    path.write_text('dprobs = "dlogprobs / probs"\ndlogprobs = "-logprobs * 0"\n')
    report = grade(makemore, answers_from(read_answer_file(path), makemore))
    assert [v.node for v in report.verdicts] == ["logprobs", "probs"]
    assert report.verdicts[0].status == "wrong" and report.verdicts[1].status == "error"
    assert len(report.missing) == 24 and not report.passed


def test_answers_that_use_each_other_in_a_circle(makemore):
    report = grade(makemore, {"logprobs": "dprobs", "probs": "dlogprobs"})
    assert all(v.status == "error" and "in turn" in v.diagnosis for v in report.verdicts)


# ---------------------------------------------------------------- progress


def test_progress_is_plain_data_that_round_trips_through_json(makemore):
    progress = Progress()
    progress = progress.with_verdict(makemore.check("logprobs", "logprobs * 0", {}).verdict).with_hint("logprobs")
    checked = makemore.check("probs", "dlogprobs / probs", _autograd(makemore, "logprobs"))
    progress = progress.with_verdict(checked.verdict)
    doc = json.loads(json.dumps(progress.to_json()))
    again = Progress.from_json(doc, makemore.order)
    assert again == progress and again.get("logprobs").hints == 1 and again.get("logprobs").status == "wrong"
    assert progress.done(makemore.order) == 1  # dprobs (from autograd's dlogprobs here)
    assert progress.next_to_do(makemore.order) == "logprobs"


def test_recheck_gives_each_answer_the_learners_own_earlier_gradients(makemore):
    progress = Progress().with_verdict(makemore.check("W2", "h.T @ dlogits", _autograd(makemore, "logits")).verdict)
    rechecked, accepted = recheck(makemore, progress)
    assert rechecked.get("W2").status == "error" and accepted == {}  # no dlogits of the learner's own


def test_session_undo_and_redo_keep_the_progress():
    session = Session(bundled("linear_regression"))
    ex = Exercise(session.preset, session.snapshot)
    first = Progress().with_verdict(ex.check("d", "d", {}).verdict)
    session.record_exercise(first, "answer dd")
    session.set_element("w", (), 2.0)
    second = first.with_hint("f")
    session.record_exercise(second, "hint for df")
    assert session.exercise is second
    session.undo()
    assert session.exercise is first
    session.undo()
    session.undo()
    assert session.exercise is None and session.values["w"].item() == 3.0
    session.redo()
    assert session.exercise is first


def test_autosave_keeps_the_progress(tmp_path, monkeypatch):
    from backprop_tui.engine import autosave

    monkeypatch.setenv(autosave.ENV_DATA_DIR, str(tmp_path))
    session = Session(bundled("linear_regression"))
    ex = Exercise(session.preset, session.snapshot)
    progress = Progress().with_verdict(ex.check("d", "d", {}).verdict).with_hint("f")
    session.record_exercise(progress, "answer dd")
    path = autosave.save_state(session)
    fresh = Session(bundled("linear_regression"))
    autosave.restore(fresh, autosave.load_state(fresh.preset))
    assert fresh.exercise == progress and fresh.exercise.get("d").status == "exact"
    doc = json.loads(path.read_text())
    doc["exercise"]["d"]["status"] = "solved"
    path.write_text(json.dumps(doc))
    lookup = autosave.read_state(fresh.preset)
    assert lookup.state is None and "bad answer or status" in lookup.problem


# ---------------------------------------------------------------- a preset's [[exercises]]


def test_makemore_ships_the_two_fused_exercises(makemore):
    from backprop_tui.engine.exercise.exercise import check_extra

    assert {e.name: (e.node, e.allowed) for e in makemore.preset.exercises} == {
        "dlogits_fused": ("logits", ("logits", "Yb")),
        "dhprebn_fused": ("hprebn", ("dhpreact", "bngain", "bnvar_inv", "bnraw")),
    }
    fused_bn = (
        "bngain * bnvar_inv / 32 * (32 * dhpreact - sum(dhpreact, dim=0, keepdim=True)"
        " - 32 / 31 * bnraw * sum(dhpreact * bnraw, dim=0, keepdim=True))"
    )
    v = check_extra(makemore, "dhprebn_fused", fused_bn, _autograd(makemore, "hpreact")).verdict
    assert v.status == "approximate" and v.maxdiff < 1e-8 and v.label == "dhprebn_fused"
    v = check_extra(makemore, "dlogits_fused", "dnorm_logits", _autograd(makemore, "norm_logits")).verdict
    assert v.status == "error" and "may use only logits, Yb; it uses dnorm_logits" in v.diagnosis
    progress = Progress().with_verdict(v)
    assert progress.get("dlogits_fused").status == "error" and progress.get("logits").status == "to do"


EXTRA = """
name = "extra"
output = "J"
[tensors.w]
role = "parameter"
value = 2.0
[[steps]]
name = "J"
expr = "w * w"
"""


@pytest.mark.parametrize("table, words", [
    ('name = "e"\nnode = "J"\nallowed = ["w"]', "'node' must name a tensor or step whose gradient is asked"),
    ('name = "e"\nnode = "w"\nallowed = []', "'allowed' must be a non-empty list of names"),
    ('name = "e"\nnode = "w"\nallowed = ["dq"]', "'allowed' names 'dq', which is neither a node"),
    ('name = "w"\nnode = "w"\nallowed = ["w"]', "duplicate name 'w'"),
    ('name = "e"\nnode = "w"\nallowed = ["w"]\nhint = "x"', "unknown key 'hint'"),
    ('name = "e"\nnode = "w"\nallowed = ["w"]\nprompt = "\\u001b[2J"', "control character U+001B"),
])
def test_a_bad_exercise_table_is_one_clear_line(table, words):
    from backprop_tui.engine import PresetError

    with pytest.raises(PresetError, match=re.escape(words)):
        parse_preset(EXTRA + "[[exercises]]\n" + table + "\n")


def test_saving_a_preset_keeps_its_exercises(tmp_path):
    from backprop_tui.engine.save import save_preset

    session = Session(bundled("makemore_backprop"))
    path = save_preset(session, tmp_path / "mine.toml")
    assert load_preset(path).exercises == session.preset.exercises


def test_an_answer_may_call_a_declared_module_as_its_step_does():
    session = Session(bundled("simple_nn"))
    ex = Exercise(session.preset, session.snapshot)
    z3 = torch.tensor(session.snapshot.node("Z3").value)
    dz3 = torch.tensor(session.snapshot.node("Z3").grad)
    v = ex.check("Z3", "linear3(A2)", {}).verdict  # the step's own value, not its gradient
    assert v.status == "wrong" and v.maxdiff == (z3 - dz3).abs().max().item()
    v = ex.check("linear3.weight", "dZ3.T @ A2", _autograd(ex, "Z3")).verdict
    assert v.accepted


def test_answers_do_not_make_the_values_unsaved():
    session = Session(bundled("linear_regression"))
    ex = Exercise(session.preset, session.snapshot)
    session.record_exercise(Progress().with_verdict(ex.check("d", "d", {}).verdict), "answer dd")
    assert not session.dirty  # quitting asks nothing: the preset's values did not change
    session.set_element("w", (), 2.0)
    session.record_exercise(session.exercise.with_hint("f"), "hint for f")
    assert session.dirty
    session.mark_saved()
    session.record_exercise(session.exercise.with_hint("f"), "hint for f")
    assert not session.dirty
    session.undo()
    session.undo()
    assert not session.dirty  # two hints undone: the values are still those saved
    session.undo()
    assert session.dirty  # the edit of w is undone
