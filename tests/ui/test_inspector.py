"""The inspector never contradicts itself: its note, requires_grad and the sections that
need a leaf's grad agree with the live requires_grad flags; numbers against torch here."""

from __future__ import annotations

import os

import torch
from ui_support import make_app, open_leaf, pilot_test, ready, scroll_inspector, settle, static_text

from backprop_tui.ui.format import fmt

os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
SIZE = (120, 40)


@pilot_test
async def test_the_note_follows_requires_grad_after_g():
    # J = (w·x + b − y)² / 2; with x requiring grad, ∂J/∂x = (w·x + b − y)·w
    x = torch.tensor(-3.0, requires_grad=True)
    ((3.0 * x + 1.0 - 5.0) ** 2 / 2).backward()
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await open_leaf(pilot, "x")
        note = "Input feature; requires_grad is false, so it has no gradient."
        details = static_text(app, "#inspector-details")
        assert "requires_grad False\n" in details and f"\n{note}" in details  # as loaded: true
        await pilot.press("g")
        await settle(pilot)
        assert app.session.requires_grad["x"]
        body, details = static_text(app, "#inspector-body"), static_text(app, "#inspector-details")
        assert f"grad   ∂J/∂x = {fmt(x.grad.item())}" in body and fmt(x.grad.item()) == "-39"
        assert "requires_grad True  (the preset sets False; g toggles it)" in details
        # the note is told as the preset's, for the flag it was written for
        assert f"the preset's note, written for requires_grad False: {note}" in details
        assert f"\n{note}" not in details
        await pilot.press("g")  # back as loaded: the note is plain again
        await settle(pilot)
        details = static_text(app, "#inspector-details")
        assert f"\n{note}" in details and "written for" not in details


@pilot_test
async def test_a_leaf_without_requires_grad_gets_no_sums_of_its_grad():
    app = make_app("simple_nn")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert not app.session.requires_grad["X"]
        await open_leaf(pilot, "X")  # the grid's cursor on X[0,0]
        await scroll_inspector(pilot, end=True)
        teaching = static_text(app, "#inspector-teaching")
        assert "X does not require grad: PyTorch computes no gradient for it" in teaching  # contributions
        assert "X does not require grad: PyTorch computes no ∂J/∂X, so there is no gradient to split into paths" \
            in teaching
        assert "add up to" not in teaching and "= ∂J/∂X" not in teaching and "X[0,0] →" not in teaching

        # a parameter turned off: its per-sample shares do not apply either
        await open_leaf(pilot, "linear1.weight")
        await pilot.press("down", "up")  # the grid was focused already: a move shows the leaf
        await pilot.press("g")
        await settle(pilot)
        assert not app.session.requires_grad["linear1.weight"]
        await scroll_inspector(pilot, end=True)
        teaching = static_text(app, "#inspector-teaching")
        assert "linear1.weight does not require grad: PyTorch computes no ∂J/∂linear1.weight, so there is no " \
               "batch gradient to share out" in teaching
        assert "add up to" not in teaching and "sample 0:" not in teaching


@pilot_test
async def test_nn_linear_backward_in_matrix_form():
    app = make_app("simple_nn")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await open_leaf(pilot, "linear1.weight")
        body = static_text(app, "#inspector-body")
        assert "  ∂J/∂linear1.weight = (∂J/∂Z1)ᵀ · X   [3×2] = [2×3]ᵀ · [2×2]" in body
        # the product of the numbers the session holds is the grad drawn above it
        snapshot = app.session.snapshot
        dZ1, X, dW = (torch.tensor(a) for a in (snapshot.node("Z1").grad, snapshot.node("X").value,
                                                snapshot.node("linear1.weight").grad))
        torch.testing.assert_close(dZ1.T @ X, dW)


@pilot_test
async def test_pointwise_local_derivatives_show_their_values():
    from backprop_tui.ui.widgets.graph_view import GraphView

    app = make_app("simple_nn")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        snapshot = app.session.snapshot
        view = app.query_one(GraphView)
        view.show_node("A3")
        await settle(pilot)
        body = static_text(app, "#inspector-body")
        assert "d/dZ3 σ(Z3) = σ(Z3)(1 − σ(Z3))" in body and "(the 2×1×2×1 Jacobian is diagonal)" in body
        z3 = torch.tensor(snapshot.node("Z3").value)
        slope = torch.sigmoid(z3) * (1 - torch.sigmoid(z3))  # σ'(z) = σ(z)(1 − σ(z)), one column
        width = max(len(fmt(float(v))) for v in slope.reshape(-1))
        for v in slope.reshape(-1):
            assert f"    [ {fmt(float(v)):>{width}} ]" in body.splitlines()
        app.open_preset("dead_relu")  # a ReLU with units off: a mask of 0s and 1s
        await ready(pilot)
        snapshot = app.session.snapshot
        view.show_node("H")
        await settle(pilot)
        body = static_text(app, "#inspector-body").splitlines()
        mask = (torch.tensor(snapshot.node("Z").value) > 0).int()  # relu'(z), aligned in columns
        assert 0 < int(mask.sum()) < mask.numel()
        at = body.index(next(line for line in body if line.startswith("  d/dZ relu(Z) = relu'(Z)")))
        assert body[at + 1: at + 1 + len(mask)] == [f"    [ {' '.join(map(str, row.tolist()))} ]" for row in mask]


@pilot_test
async def test_a_tensors_contributions_are_aligned_matrices_that_read_back():
    from backprop_tui.engine.analysis.contributions import node_contributions
    from backprop_tui.ui.widgets.graph_view import GraphView

    app = make_app("residual_layernorm")  # x feeds the residual sum and the layer norm: two parts
    async with app.run_test(size=(200, 50)) as pilot:
        await ready(pilot)
        snapshot = app.session.snapshot
        app.query_one(GraphView).show_node("x")
        await settle(pilot)
        body = static_text(app, "#inspector-body")
        assert "(vector-Jacobian products): the grad shown above" in body and "[[" not in body
        lines = static_text(app, "#inspector-teaching").splitlines()
        start = lines.index("Contributions: what each consumer sends back")
        split = node_contributions(app.session, "x")
        assert len(split.contributions) == 2 and snapshot.node("x").grad.shape == (4, 8)
        expected = [*(p.value for p in split.contributions), split.total]
        blocks, block = [], []
        for line in lines[start + 1:]:
            if line.startswith("    ["):
                block.append(line)
            elif block:
                blocks.append(block)
                block = []
            if line.startswith("  autograd's"):
                assert line == "  autograd's ∂loss/∂x (the grad above) is their sum, element for element"
                break
        assert len(blocks) == 3  # the two parts and their sum
        for block, array in zip(blocks, expected):
            assert len({len(row) for row in block}) == 1  # aligned: every row as wide
            # the columns that fit the panel, then "… +N" for the rest
            cells = [row.split(" … ")[0].strip().strip("[]").split() for row in block]
            assert len({len(row) for row in cells}) == 1 and len(cells[0]) >= 2
            shown = [[float(c) for c in row] for row in cells]
            # each number whole or rounded, never cut: within its own last digit
            for r, row in enumerate(shown):
                for c, number in enumerate(row):
                    assert fmt(float(array[r, c])).lstrip("+") == fmt(number), (r, c)
