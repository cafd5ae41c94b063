"""Teaching depth in the explorer: the numbers on screen against torch computed here.

Contributions and paths in the inspector, the step-through of both passes (b, B),
finite differences (f), "your gradient" (y), flags in the graph and inspector, and
per-sample shares. Each expected number is computed independently with torch below.
"""

from __future__ import annotations

import os

import torch
from textual.widgets import DataTable, Input
from ui_support import (
    make_app,
    pilot_test,
    plain,
    ready,
    scroll_inspector,
    select_leaf,
    settle,
    static_text,
    tree_label,
)

from backprop_tui.ui.format import FLAG_MARK, fmt
from backprop_tui.ui.screens.gradcheck import GradcheckScreen
from backprop_tui.ui.screens.stepper import StepThroughScreen
from backprop_tui.ui.screens.your_gradient import YourGradientScreen
from backprop_tui.ui.widgets.graph_view import GraphView

os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
SIZE = (100, 30)


def teaching_text(app) -> str:
    return static_text(app, "#inspector-teaching")


async def highlight(pilot, name: str) -> None:
    """Move the graph tree's cursor to the full entry of `name`."""
    tree = pilot.app.query_one(GraphView)
    tree.show_node(name)
    await settle(pilot)
    assert tree.highlighted_name == name


def linear_regression_torch():
    """J = (w·x + b − y)² / 2 at the preset's values, by hand in torch."""
    x, y = torch.tensor(-3.0), torch.tensor(5.0)
    w, b = torch.tensor(3.0, requires_grad=True), torch.tensor(1.0, requires_grad=True)
    c = w * x
    c.retain_grad()
    J = (c + b - y) ** 2 / 2
    J.backward()
    return w.grad.item(), b.grad.item(), c.grad.item(), x.item()


@pilot_test
async def test_contributions_add_up_to_the_grad_on_gradient_accumulation():
    x = torch.tensor(2.0, requires_grad=True)
    y = torch.tensor(3.0)
    p = x * y
    via_p = torch.autograd.grad(p, x)[0].item()  # ∂f/∂p = 1 times ∂p/∂x
    direct = 1.0  # f = p + x
    f = x * y + x
    f.backward()
    assert (via_p, direct, x.grad.item()) == (3.0, 1.0, 4.0)

    app = make_app("gradient_accumulation")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await highlight(pilot, "x")
        text = teaching_text(app)
        assert "Contributions" in text
        assert f"from p  (∂f/∂p · ∂p/∂x)  {fmt(via_p)}" in text
        assert f"from f  (∂f/∂x directly)  {fmt(direct)}" in text
        assert (
            f"sum  {fmt(via_p)} + {fmt(direct)} = {fmt(x.grad.item())}   autograd's ∂f/∂x = {fmt(x.grad.item())}"
            in text
        )
        assert "x is used 2 times" in text
        # and as the sum over paths: x → p → f and x → f
        assert "x → p → f: 3 × 1 = 3" in text
        assert "2 paths from x to f; their products add up to 4 = ∂f/∂x" in text


@pilot_test
async def test_path_product_on_scalar_chain():
    x = torch.tensor(-3.0, requires_grad=True)
    h = x + 5
    g = h**3 + 1
    f = g**2
    f.backward()
    dh_dx, dg_dh, df_dg = 1.0, (3 * h**2).item(), (2 * g).item()
    assert x.grad.item() == dh_dx * dg_dh * df_dg == 216

    app = make_app("scalar_chain")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await highlight(pilot, "x")
        text = teaching_text(app)
        assert f"x → h → g → f: {fmt(dh_dx)} × {fmt(dg_dh)} × {fmt(df_dg)} = {fmt(x.grad.item())}" in text
        assert "1 path from x to f; their products add up to 216 = ∂f/∂x" in text


@pilot_test
async def test_step_through_backward_and_forward_on_linear_regression():
    w_grad, b_grad, c_grad, x = linear_regression_torch()
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("b")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, StepThroughScreen)
        order = [step.node for step in screen.steps["backward"]]
        assert order == ["J", "d", "f", "c", "b", "w"]  # reverse topological, leaves last
        await pilot.press("right", "right", "right")  # J, d, f, c
        await pilot.pause()
        detail = plain(screen.query_one("#steps-detail").content)
        # incoming grad × local derivative = contribution, for w
        assert f"∂J/∂c = {fmt(c_grad)}" in detail
        assert f"d/dw w·x = x = {fmt(x)}" in detail
        assert f"c → w: ({fmt(c_grad)}) × ({fmt(x)}) = {fmt(w_grad)}" in detail
        assert f"w has received every part: its grad is {fmt(w_grad)}" in detail
        # the graph's cursor follows the step
        assert app.query_one(GraphView).highlighted_name == "c"
        await pilot.press("end")
        await pilot.pause()
        assert f"w.grad = {fmt(w_grad)}" in plain(screen.query_one("#steps-detail").content)
        await pilot.press("left")
        await pilot.pause()
        assert f"b.grad = {fmt(b_grad)}" in plain(screen.query_one("#steps-detail").content)
        # the forward pass, in order
        await pilot.press("B")
        await pilot.pause()
        assert [step.node for step in screen.steps["forward"]][:4] == ["x", "y", "w", "b"]
        await pilot.press("end")
        await pilot.pause()
        assert "J = d²/2 = (−13)²/2 = 84.5" in plain(screen.query_one("#steps-detail").content)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, StepThroughScreen)
        assert app.query_one(GraphView).highlighted_name == "J"


@pilot_test
async def test_your_gradient_exact_then_wrong():
    w_grad, *_ = linear_regression_torch()
    assert w_grad == 39
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await highlight(pilot, "w")
        await pilot.press("y")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, YourGradientScreen)
        await pilot.press(*"39", "enter")
        await pilot.pause()
        result = plain(screen.query_one("#yg-result").content)
        assert result.startswith("✓ exact") and "∂J/∂w = 39" in result
        field = screen.query_one(Input)
        field.value = ""
        await pilot.press(*"40", "enter")
        await pilot.pause()
        result = plain(screen.query_one("#yg-result").content)
        assert result.startswith("✗ wrong")
        assert f"off by {fmt(40 - w_grad)}" in result
        assert "abs diff 1 " in plain(screen.query_one("#yg-details").content)
        # text that is not a number is an expression: an unknown name is refused with the reason
        field.value = ""
        await pilot.press(*"abc", "enter")
        await pilot.pause()
        assert "unknown name 'abc'" in plain(screen.query_one("#yg-result").content)
        field.value = ""
        await pilot.press(*"1e999", "enter")  # a number the weight editor refuses is refused alike
        await pilot.pause()
        assert "out of float32 range" in plain(screen.query_one("#yg-result").content)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, YourGradientScreen)


@pilot_test
async def test_your_gradient_whole_tensor_and_any_element():
    app = make_app("simple_nn")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        snapshot = app.session.snapshot
        A3, Y = torch.tensor(snapshot.node("A3").value), torch.tensor(snapshot.node("Y").value)
        # J = sum((A3 - Y)**2) / 4, so dA3 = (A3 - Y) / 2; dZ3 = dA3 * A3 * (1 - A3) through the sigmoid
        assert torch.allclose((A3 - Y) / 2, torch.tensor(snapshot.node("A3").grad))
        await highlight(pilot, "A3")
        await pilot.press("y")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, YourGradientScreen)
        await pilot.press(*"(A3 - Y) / 2", "enter")
        await pilot.pause()
        assert plain(screen.query_one("#yg-result").content).startswith(("✓ exact", "≈ approximate"))
        assert "1 of " in plain(screen.query_one("#yg-details").content)
        await pilot.press("escape")
        await highlight(pilot, "Z3")
        await pilot.press("y")
        await pilot.pause()
        screen = app.screen
        await pilot.press(*"dA3 * A3", "enter")  # the sigmoid's derivative half done: wrong, and why
        await pilot.pause()
        result = plain(screen.query_one("#yg-result").content)
        assert result.startswith("✗ wrong") and "maxdiff" in result
        screen.query_one("#yg-input", Input).value = ""
        await pilot.press(*"dA3 * A3 * (1 - A3)", "enter")
        await pilot.pause()
        assert plain(screen.query_one("#yg-result").content).startswith(("✓ exact", "≈ approximate"))
        assert "uses your dA3" in plain(screen.query_one("#yg-details").content)
        progress = app.session.exercise
        assert progress.get("Z3").accepted and progress.get("Z3").grads_used == ("A3",)
        # a number is judged for the element typed, any element of an intermediate
        A1_grad = snapshot.node("A1").grad
        await pilot.press("escape")
        await highlight(pilot, "A1")
        await pilot.press("y")
        await pilot.pause()
        screen = app.screen
        element = screen.query_one("#yg-element", Input)
        assert element.value == "0, 0"
        element.value = ""
        await pilot.press("shift+tab", *"1, 2", "tab", *f"{float(A1_grad[1, 2]):.3g}", "enter")
        await pilot.pause()
        result = plain(screen.query_one("#yg-result").content)
        assert result.startswith(("✓ exact", "≈ close")) and "∂J/∂A1[1,2]" in result, result
        screen.query_one("#yg-input", Input).value = ""
        element.value = "2, 0"
        await pilot.press("1", "enter")
        await pilot.pause()
        assert "not an element of a tensor of shape [2, 3]" in plain(screen.query_one("#yg-result").content)
        await pilot.press("escape")
        await pilot.pause()
        # the answers are the session's: undo takes the last one back
        await pilot.press("ctrl+z")
        await pilot.pause()
        assert not app.session.exercise.get("Z3").accepted and app.session.exercise.get("A3").accepted


@pilot_test
async def test_finite_differences_on_linear_regression():
    w_grad, b_grad, *_ = linear_regression_torch()
    # central differences written out here, in float64
    def J(w, b):
        return (w * -3.0 + b - 5.0) ** 2 / 2

    h = 1e-6 * 3
    w_numeric = (J(3 + h, 1) - J(3 - h, 1)) / (2 * h)
    app = make_app("linear_regression")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("f")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, GradcheckScreen)
        table = screen.query_one(DataTable)
        rows = {plain(table.get_row_at(i)[0]): [plain(c) for c in table.get_row_at(i)] for i in range(table.row_count)}
        assert set(rows) == {"w", "b"}
        assert rows["w"][2] == fmt(w_grad) == "39" and rows["w"][3] == fmt(w_numeric, 9) == "39"
        assert rows["b"][2] == fmt(b_grad) == "-13" and rows["b"][3] == "-13"
        assert rows["w"][6] == rows["b"][6] == "ok"
        assert "2 ok" in plain(screen.query_one("#gc-summary").content)


@pilot_test
async def test_finite_differences_flag_a_relu_kink():
    # dead_relu with hidden.bias[0] moved so that Z[0,0] = 0 exactly: a kink for hidden.bias[0]
    app = make_app("dead_relu")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        z00 = float(app.session.snapshot.node("Z").value[0, 0])
        bias0 = float(app.session.values["hidden.bias"][0])
        app.session.set_element("hidden.bias", (0,), bias0 - z00)
        assert float(app.session.snapshot.node("Z").value[0, 0]) == 0
        await pilot.press("f")
        await settle(pilot)
        screen = app.screen
        table = screen.query_one(DataTable)
        status = {plain(table.get_row_at(i)[0]): plain(table.get_row_at(i)[6]) for i in range(table.row_count)}
        assert status["hidden.bias[0]"].startswith("kink")
        assert "mismatch" not in plain(screen.query_one("#gc-summary").content)


@pilot_test
async def test_finite_differences_at_a_kink_never_say_agree(tmp_path):
    # J = relu(x)·3 + |y| at x = y = 0: autograd gives 0 for both (torch's relu'(0) and
    # sign(0)); the central differences are 1.5 (between the slopes 0 and 3) and 0
    preset = tmp_path / "kinks.toml"
    preset.write_text('output = "J"\n[tensors.x]\nrole = "parameter"\nvalue = 0.0\n'
                      '[tensors.y]\nrole = "parameter"\nvalue = 0.0\n'
                      '[[steps]]\nname = "J"\nexpr = "relu(x)*3+abs(y)"\n')
    app = make_app(str(preset))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("f")
        await settle(pilot)
        screen = app.screen
        table = screen.query_one(DataTable)
        rows = {plain(table.get_row_at(i)[0]): [plain(c) for c in table.get_row_at(i)] for i in range(table.row_count)}
        assert rows["x"][2:4] == ["0", "1.5"] and rows["x"][6].startswith("kink")
        assert rows["y"][2:4] == ["0", "0"] and rows["y"][6].startswith("kink")
        summary = plain(screen.query_one("#gc-summary").content)
        assert "2 kink" in summary and "2 at a kink, where no derivative exists" in summary
        assert "agree" not in summary
        reason = plain(screen.query_one("#gc-reason").content)
        assert "relu(x) in J has input exactly 0" in reason and "agree" not in reason


@pilot_test
async def test_flags_mark_the_graph_and_explain_in_the_inspector():
    app = make_app("dead_relu")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await settle(pilot)
        # Z = hidden(X): unit 1's input is ≤ 0 for every sample (torch, here)
        X = torch.tensor([[1, 0.5], [-0.5, 2], [2, -1]])
        W = torch.tensor([[1.0, -1], [0.5, 0.5], [-1, 2]])
        bias = torch.tensor([0.5, -10, 0.5])
        Z = X @ W.T + bias
        assert bool((Z[:, 1] <= 0).all())
        assert f" {FLAG_MARK}" in tree_label(app, "H")
        assert FLAG_MARK not in tree_label(app, "Z")
        await highlight(pilot, "H")
        text = teaching_text(app)
        assert "dead ReLU in H: unit 1 of relu(Z)" in text
        assert f"max {fmt(Z[:, 1].max().item())}" in text


@pilot_test
async def test_per_sample_shares_on_dead_relu():
    X = torch.tensor([[1, 0.5], [-0.5, 2], [2, -1]])
    Y = torch.tensor([[0.0], [1], [0]])
    W = torch.tensor([[1.0, -1], [0.5, 0.5], [-1, 2]], requires_grad=True)
    bias = torch.tensor([0.5, -10, 0.5])
    W2 = torch.tensor([[2.0, 1, 3]])
    b2 = torch.tensor([4.0])

    def loss(i):
        P = torch.sigmoid(torch.relu(X[i:i + 1] @ W.T + bias) @ W2.T + b2)
        return ((P - Y[i:i + 1]) ** 2).mean()

    own = [torch.autograd.grad(loss(i), W)[0][0, 0].item() for i in range(3)]
    app = make_app("dead_relu")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select_leaf(pilot, "hidden.weight")
        await settle(pilot)
        await scroll_inspector(pilot, end=True)  # the per-sample section comes last
        text = teaching_text(app)
        assert "Per sample" in text and "mean of the 3 per-sample losses" in text
        for i, g in enumerate(own):
            line = next(line for line in text.splitlines() if line.strip().startswith(f"sample {i}:"))
            shown = line.split(":")[1].split()[0]
            assert abs(float(shown) - g) <= 1e-5 * max(1.0, abs(g)), (line, g)
        grad = app.session.snapshot.node("hidden.weight").grad[0, 0]
        assert f"add up to the batch gradient ∂J/∂hidden.weight[0,0] = {fmt(float(grad))}" in text


@pilot_test
async def test_big_preset_computes_in_a_worker():
    app = make_app("mlp_784")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await settle(pilot)
        assert "computing" not in teaching_text(app)
        assert "Contributions" in teaching_text(app)
        await pilot.press("f")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, GradcheckScreen)
        assert screen.query_one(DataTable).row_count > 0
        assert "page 1 of" in plain(screen.query_one("#gc-page").content)
        await pilot.press("greater_than_sign")
        await settle(pilot)
        assert "page 2 of" in plain(screen.query_one("#gc-page").content)
        assert "leaf" in plain(screen.query_one("#gc-page").content)
