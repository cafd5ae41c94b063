"""Graph labels fitted to a width (ui/graph_labels.py), without an app: the numbers stay
whole (rounded, never cut) while anything else is shortened, names are never cut, and a
change reads in words."""

from __future__ import annotations

import re

import pytest

from backprop_tui.engine.numbers import fmt
from backprop_tui.ui.format import PREVIEW_DIGITS, signed
from backprop_tui.ui.graph_labels import NodeLabel, gap_label, ref_label

PRESETS = ("scalar_chain", "linear_regression", "simple_nn", "softmax_classifier", "dead_relu", "deep_chain",
           "makemore_backprop", "attention_head")
NUMBER = r"[-+]?(?:\d+\.?\d*(?:e[-+]?\d+)?|inf|nan)"


def sessions():
    from backprop_tui.engine import Session, load_preset, resolve_preset

    for preset in PRESETS:
        session = Session(load_preset(resolve_preset(preset)))
        leaf = next(leaf for leaf in session.snapshot.leaves if leaf.requires_grad)
        session.nudge(leaf.name, (0,) * len(leaf.shape), 0.1)
        yield preset, session


@pytest.fixture(scope="module")
def edited():
    return list(sessions())


def first_numbers(node) -> tuple[str, str | None]:
    """The value's and the grad's first element as a label must show them."""
    value = node.value.reshape(-1)[0]
    digits = 6 if not node.shape else PREVIEW_DIGITS
    grad = None if node.grad is None else signed(node.grad.reshape(-1)[0], digits)
    return fmt(value, digits), grad


def numbers_after(plain: str, start: str) -> list[str]:
    return re.findall(NUMBER, plain.split(start, 1)[1]) if start in plain else []


def test_from_36_cells_every_label_keeps_its_name_value_and_grad(edited):
    """36 cells: a leaf six levels deep in the graph panel at 80 columns. The value's and
    the grad's first element are shown, a scalar's in full, never cut."""
    checked = 0
    for preset, session in edited:
        snapshot, previous = session.snapshot, session.previous
        for node in snapshot.nodes:
            if len(node.name) > 14:
                continue  # a long name needs more room; it is never cut (below)
            label = NodeLabel(node, previous.node(node.name), flagged=False)
            value, grad = first_numbers(node)
            for width in range(36, 130, 7):
                plain = label.fit(width).plain
                assert len(plain) <= width, (preset, node.name, width)
                assert plain.startswith(node.name + " "), (preset, plain)
                rest = plain[len(node.name):]
                shown = re.findall(NUMBER, rest.split("grad")[0].replace(f"[{'×'.join(map(str, node.shape))}]", ""))
                assert shown and shown[0] == value or (node.expr and value in rest.split("grad")[0]), (
                    preset, plain, value)
                if grad is None:
                    assert plain.endswith("no grad"), plain
                else:
                    assert numbers_after(plain, "grad ")[0] == grad, (preset, plain, grad)
                checked += 1
    assert checked > 2000


def test_the_expression_is_shortened_before_a_number_goes():
    from backprop_tui.engine import Session, load_preset, resolve_preset

    snapshot = Session(load_preset(resolve_preset("simple_nn"))).snapshot
    label = NodeLabel(snapshot.node("A3"), None)
    full = label.full().plain
    assert full.startswith("A3 = sigmoid(Z3)  [2×1] 0.279 0.741  grad -0.111 -0.0296"), full
    numbers = full.split("  ", 1)[1]
    for width in range(len(full) - 1, len("A3") + len(numbers) + 2, -1):
        plain = label.fit(width).plain
        assert plain.endswith(numbers), (width, plain)  # the numbers whole while the expression shrinks
        assert plain.startswith("A3 = sig") or plain == "A3  " + numbers, (width, plain)
    assert label.fit(len("A3  " + numbers)).plain == "A3  " + numbers


def test_a_scalar_keeps_every_digit_and_its_delta_until_the_expression_is_gone():
    from backprop_tui.engine import Session, load_preset, resolve_preset

    session = Session(load_preset(resolve_preset("linear_regression")))
    session.set_element("w", (), 2.0)
    label = NodeLabel(session.snapshot.node("J"), session.previous.node("J"))
    assert label.full().plain == "J = d**2 / 2  50 Δ-34.5  grad +1"
    assert label.fit(24).plain == "J  50 Δ-34.5  grad +1"
    assert label.fit(16).plain == "J  50  grad +1"  # the delta goes before a digit does


def test_a_tensor_change_is_said_in_words(edited):
    for _, session in edited:
        for node in session.snapshot.nodes:
            plain = NodeLabel(node, session.previous.node(node.name)).full().plain
            assert not re.search(r"Δ\d+ changed", plain), plain
            match = re.search(r"\((\d+) of (\d+) changed\)", plain)
            if match:
                assert int(match.group(2)) == node.value.size and 0 < int(match.group(1)) <= node.value.size


def test_names_are_never_cut_while_anything_else_is_drawn():
    from backprop_tui.engine import Session, load_preset, resolve_preset

    snapshot = Session(load_preset(resolve_preset("simple_nn"))).snapshot
    label = NodeLabel(snapshot.node("linear1.weight"), None)
    for width in range(len("linear1.weight"), 80):
        assert label.fit(width).plain.startswith("linear1.weight"), width
    assert label.fit(8).plain == "linear1…"  # narrower than the name: cut at its end, never its start
    assert ref_label("linear1.weight", 20).plain.startswith("↪ linear1.weight")
    assert ref_label("linear1.weight", 20).cell_len == 20


def test_a_folded_run_names_its_ends_or_leaves_them_out_whole():
    assert gap_label(493, "h248", "h2", 50).plain == "… 493 more steps (enter: open 50)  h248 … h2"
    assert gap_label(493, "h248", "h2", 50, 40).plain == "… 493 more steps (enter: open 50)"
    assert gap_label(1, "h2", "h2", 50).plain == "… 1 more step (enter: open)  h2"


def test_a_forms_width_is_counted_as_it_is_drawn():
    """Fitting measures forms without making them: each count must equal the drawn width,
    changed elements and deltas included."""
    from backprop_tui.engine import Session, load_preset, resolve_preset

    for preset in PRESETS:
        session = Session(load_preset(resolve_preset(preset)))
        before = session.snapshot
        leaf = next(leaf for leaf in before.leaves if leaf.requires_grad)
        after = session.nudge(leaf.name, (0,) * len(leaf.shape), 0.1)
        for node in after.nodes:
            for previous in (None, before.node(node.name)):
                label = NodeLabel(node, previous)
                for forms in (label.values.forms, label.values.wide, label.grads.forms, label.grads.wide):
                    for i in range(len(forms) + 1 if len(forms) else 0):  # past the end: the narrowest
                        assert forms.width(i) == forms.at(i).cell_len, (preset, node.name, i)


def test_changed_marks_what_moved_and_not_a_nan_that_stayed_nan():
    import numpy as np

    from backprop_tui.ui.format import changed

    new = np.array([1.0, np.nan, np.nan, 3.0, 5.0, -0.0], dtype=np.float32)
    old = np.array([1.0, np.nan, 2.0, np.nan, 4.0, 0.0], dtype=np.float32)
    assert changed(new, old).tolist() == [False, False, True, True, True, False]  # -0.0 == 0.0
    assert changed(np.array([1, 2]), np.array([1, 3])).tolist() == [False, True]
    assert changed(new, None) is None and changed(new[:2], old) is None
