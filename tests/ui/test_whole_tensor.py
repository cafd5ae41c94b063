"""`v`: any node's value or grad, whole. Every element is read back off the screen and
compared with the session's tensor, at the digits shown."""

from __future__ import annotations

import os

import numpy as np
from ui_support import make_app, pilot_test, ready, settle

from backprop_tui.engine.numbers import fmt
from backprop_tui.ui.screens.whole_tensor import WholeTensorScreen
from backprop_tui.ui.widgets.graph_view import GraphView
from backprop_tui.ui.widgets.tensor_view import TensorView

os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")


def drawn(view: TensorView) -> list[str]:
    return [view.render_line(y).text for y in range(view.scrollable_content_region.height)]


def read_back(view: TensorView) -> dict[tuple[int, ...], str]:
    """{element index: the number drawn} for every element in view."""
    lines = drawn(view)
    columns = [int(c) for c in lines[0].split()]
    shown = {}
    for line in lines[1:]:
        if not line.strip():
            continue
        label, *numbers = line.split()
        assert len(numbers) == len(columns), line
        lead = tuple(int(i) for i in label.strip("[]").split(",")[:-1])
        for column, number in zip(columns, numbers):
            shown[lead + (column,)] = number
    return shown


def expected(array: np.ndarray, index: tuple[int, ...], grad: bool) -> str:
    text = fmt(float(array[index]))
    return "+" + text if grad and not text.startswith("-") and text not in ("0", "nan") else text


async def open_whole(pilot, name: str) -> TensorView:
    pilot.app.query_one(GraphView).show_node(name)
    await settle(pilot)
    await pilot.press("v")
    await pilot.pause()
    assert isinstance(pilot.app.screen, WholeTensorScreen)
    return pilot.app.screen.query_one(TensorView)


@pilot_test
async def test_an_intermediates_value_and_grad_whole():
    app = make_app("simple_nn")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        node = app.session.snapshot.node("A1")
        view = await open_whole(pilot, "A1")
        shown = read_back(view)
        assert set(shown) == set(np.ndindex(node.shape))
        for index, number in shown.items():
            assert number == expected(node.value, index, False), index
        await pilot.press("t")
        await pilot.pause()
        shown = read_back(view)
        for index, number in shown.items():
            assert number == expected(node.grad, index, True), index
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, WholeTensorScreen)


@pilot_test
async def test_a_wide_weight_scrolls_to_its_last_element_in_whole_columns():
    app = make_app("mlp_784")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        name = next(n.name for n in app.session.snapshot.leaves if n.requires_grad and len(n.shape) == 2)
        node = app.session.snapshot.node(name)
        view = await open_whole(pilot, name)
        seen = read_back(view)
        assert (0, 0) in seen
        await pilot.press("right", "right")  # whole columns at a time
        seen = read_back(view)
        assert min(index[1] for index in seen) == 2
        await pilot.press("end")  # the last element, bottom right
        seen = read_back(view)
        last = (node.shape[0] - 1, node.shape[1] - 1)
        assert seen[last] == expected(node.value, last, False)
        for index, number in seen.items():
            assert number == expected(node.value, index, False), index


@pilot_test
async def test_a_4d_tensor_labels_its_rows_with_their_leading_indices():
    app = make_app("tiny_cnn")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        name = next(n.name for n in app.session.snapshot.nodes if len(n.shape) == 4)
        node = app.session.snapshot.node(name)
        view = await open_whole(pilot, name)
        lines = drawn(view)
        assert lines[1].split()[0] == "[0,0,0,:]"
        shown = read_back(view)
        assert shown and all(number == expected(node.value, index, False) for index, number in shown.items())
