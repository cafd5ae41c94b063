"""Max pooling's backward pass in words: each window's gradient goes to the position of
its maximum, and the rest of the window gets nothing. For the inspector; the positions
are the ones torch's pooling picks (its indices), the gradient is autograd's."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from backprop_tui.engine.numbers import fmt

MAX_LINES = 3


def routing_lines(node: str, x_name: str, x: torch.Tensor, grad: torch.Tensor | None, kwargs: dict) -> list[str]:
    """For the first windows: which element of `x_name` is the maximum and gets the grad."""
    k = kwargs["kernel_size"]
    s, p = kwargs.get("stride", k), kwargs.get("padding", 0)
    with torch.no_grad():
        _, index = F.max_pool2d(x.detach(), k, s, p, return_indices=True)
    width = x.shape[-1]
    flat_index = index.reshape(-1, *index.shape[-2:])
    lead_shape = index.shape[:-2]
    lines = [f"max pooling routes: each window's gradient goes to its maximum; the other {k * k - 1} "
             f"positions of a {k}×{k} window get 0"]
    for n, (plane, i, j) in enumerate(np.ndindex(flat_index.shape)):
        if n == MAX_LINES:
            lines.append(f"… and so for each of the {flat_index.numel()} windows")
            break
        lead = np.unravel_index(plane, lead_shape) if lead_shape else ()
        at = int(flat_index[plane, i, j])
        source = ",".join(map(str, (*map(int, lead), at // width, at % width)))
        out = ",".join(map(str, (*map(int, lead), i, j)))
        text = f"{node}[{out}] is {x_name}[{source}], the maximum of its window"
        if grad is not None:
            text += f": its grad {fmt(float(grad.reshape(-1, *grad.shape[-2:])[plane, i, j]))} goes there"
        lines.append(text)
    return lines


def max_pooling_steps(preset) -> list[tuple[str, str, dict]]:
    """(step, its input's name, its keywords) for every step that is max_pool2d of a name."""
    from backprop_tui.engine.expr import Call, Ref

    found = []
    for step in preset.steps:
        tree = step.expr.tree
        if isinstance(tree, Call) and tree.func == "max_pool2d" and isinstance(tree.args[0], Ref):
            found.append((step.name, tree.args[0].name, dict(tree.kwargs)))
    return found
