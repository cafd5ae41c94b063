"""Each function and operator of the expression language means what the docs say.

For every case a preset computes `y = EXPR` and the cost `J = sum(y * y) / 2`; the values
of y and J and the gradients of the leaves must equal the same formula written out by
hand in float64 (from its definition, not from torch.nn.functional) and run with autograd.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backprop_tui.engine import Session, parse_preset

Z = [[0.5, -1.2, 2.0], [-0.3, 0.8, -2.5]]
P = [[0.2, 0.7, 0.9], [0.4, 0.1, 0.6]]
T = [[1.0, 0.0, 1.0], [0.0, 0.5, 1.0]]
C = [2, 0]
W = [[0.3, -0.7], [1.1, 0.4], [-0.6, 0.9]]

PRESET = f"""
output = "J"
[tensors.z]
role = "parameter"
value = {Z}
[tensors.p]
role = "parameter"
value = {P}
[tensors.t]
role = "target"
value = {T}
[tensors.c]
role = "target"
dtype = "int"
value = {C}
[tensors.w]
role = "parameter"
value = {W}
[[steps]]
name = "y"
expr = '''{{expr}}'''
[[steps]]
name = "J"
expr = "sum(y * y) / 2"
"""


def softmax(x, dim):
    e = torch.exp(x - x.max(dim=dim, keepdim=True).values)
    return e / e.sum(dim=dim, keepdim=True)


def bce(p, t):
    return -(t * torch.log(p) + (1 - t) * torch.log(1 - p))


def bce_logits(z, t):
    return torch.clamp(z, min=0) - z * t + torch.log(1 + torch.exp(-torch.abs(z)))


def ce(z, c):
    return torch.logsumexp(z, dim=1) - z[torch.arange(z.shape[0]), c]


CASES = {
    "relu(z)": lambda z, p, t, c, w: z * (z > 0),
    "sigmoid(z)": lambda z, p, t, c, w: 1 / (1 + torch.exp(-z)),
    "tanh(z)": lambda z, p, t, c, w: (torch.exp(z) - torch.exp(-z)) / (torch.exp(z) + torch.exp(-z)),
    "exp(z)": lambda z, p, t, c, w: torch.exp(z),
    "log(p)": lambda z, p, t, c, w: torch.log(p),
    "sqrt(p)": lambda z, p, t, c, w: p**0.5,
    "abs(z)": lambda z, p, t, c, w: torch.where(z >= 0, z, -z),
    "sum(z)": lambda z, p, t, c, w: z.sum(),
    "sum(z, dim=0)": lambda z, p, t, c, w: z[0] + z[1],
    "sum(z, dim=-1, keepdim=True)": lambda z, p, t, c, w: (z[:, 0] + z[:, 1] + z[:, 2]).reshape(2, 1),
    "mean(z)": lambda z, p, t, c, w: z.sum() / 6,
    "mean(z, dim=1)": lambda z, p, t, c, w: (z[:, 0] + z[:, 1] + z[:, 2]) / 3,
    "mean(z, dim=0, keepdim=True)": lambda z, p, t, c, w: ((z[0] + z[1]) / 2).reshape(1, 3),
    "softmax(z)": lambda z, p, t, c, w: softmax(z, 1),
    "softmax(z, dim=0)": lambda z, p, t, c, w: softmax(z, 0),
    "log_softmax(z)": lambda z, p, t, c, w: torch.log(softmax(z, 1)),
    "log_softmax(z, dim=0)": lambda z, p, t, c, w: torch.log(softmax(z, 0)),
    "mse(z, t)": lambda z, p, t, c, w: ((z - t) ** 2).mean(),
    "mse(z, t, reduction='sum')": lambda z, p, t, c, w: ((z - t) ** 2).sum(),
    "bce(p, t)": lambda z, p, t, c, w: bce(p, t).mean(),
    "bce(p, t, reduction='sum')": lambda z, p, t, c, w: bce(p, t).sum(),
    "bce_with_logits(z, t)": lambda z, p, t, c, w: bce_logits(z, t).mean(),
    "bce_with_logits(z, t, reduction='sum')": lambda z, p, t, c, w: bce_logits(z, t).sum(),
    "cross_entropy(z, c)": lambda z, p, t, c, w: ce(z, c).mean(),
    "cross_entropy(z, c, reduction='sum')": lambda z, p, t, c, w: ce(z, c).sum(),
    "gelu(z)": lambda z, p, t, c, w: z * (1 + torch.erf(z / np.sqrt(2.0))) / 2,
    "gelu(z, approximate='tanh')": lambda z, p, t, c, w: (
        z * (1 + torch.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3))) / 2
    ),
    "leaky_relu(z)": lambda z, p, t, c, w: torch.where(z > 0, z, 0.01 * z),
    "leaky_relu(z, negative_slope=0.2)": lambda z, p, t, c, w: torch.where(z > 0, z, 0.2 * z),
    "leaky_relu(z, negative_slope=-1)": lambda z, p, t, c, w: torch.where(z > 0, z, -z),
    "cat(z, p)": lambda z, p, t, c, w: torch.stack([z[0], z[1], p[0], p[1]]),
    "cat(z, p, w.T, dim=1)": lambda z, p, t, c, w: torch.stack(
        [torch.stack([z[i, 0], z[i, 1], z[i, 2], p[i, 0], p[i, 1], p[i, 2], w[0, i], w[1, i], w[2, i]])
         for i in range(2)]
    ),
    "cat(p, z, dim=-2)": lambda z, p, t, c, w: torch.stack([p[0], p[1], z[0], z[1]]),
    "transpose(z, 0, 1)": lambda z, p, t, c, w: torch.stack([z[:, 0], z[:, 1], z[:, 2]]),
    "transpose(z, -1, 0) @ w.T": lambda z, p, t, c, w: torch.stack(
        [torch.stack([sum(z[k, i] * w[j, k] for k in range(2)) for j in range(3)]) for i in range(3)]
    ),
    "flatten(z)": lambda z, p, t, c, w: torch.stack([z[i, j] for i in range(2) for j in range(3)]),
    "flatten(reshape(z, 1, 2, 3), start_dim=1)": lambda z, p, t, c, w: torch.stack(
        [torch.stack([z[i, j] for i in range(2) for j in range(3)])]
    ),
    "flatten(reshape(z, 1, 2, 3), end_dim=1)": lambda z, p, t, c, w: torch.stack([z[0], z[1]]),
    "flatten(reshape(z, 2, 3, 1), start_dim=-2, end_dim=-1) * p": lambda z, p, t, c, w: z * p,
    "z.T": lambda z, p, t, c, w: torch.stack([z[:, 0], z[:, 1], z[:, 2]]),
    "z @ w": lambda z, p, t, c, w: torch.stack(
        [torch.stack([sum(z[i, k] * w[k, j] for k in range(3)) for j in range(2)]) for i in range(2)]
    ),
    "z @ w.T.T": lambda z, p, t, c, w: z @ w,
    "-z + 2": lambda z, p, t, c, w: 2 - z,
    "z ** 3 - z / p": lambda z, p, t, c, w: z * z * z - z / p,
    "-z ** 2": lambda z, p, t, c, w: -(z * z),
    "2 ** p": lambda z, p, t, c, w: torch.exp(p * np.log(2.0)),
    "z * p + t": lambda z, p, t, c, w: z * p + t,
}


@pytest.mark.parametrize("expr", list(CASES))
def test_function_means_what_the_docs_say(expr):
    session = Session(parse_preset(PRESET.format(expr=expr), source="functions.toml"))
    snap = session.snapshot

    leaves = {
        "z": torch.tensor(Z, dtype=torch.float64, requires_grad=True),
        "p": torch.tensor(P, dtype=torch.float64, requires_grad=True),
        "t": torch.tensor(T, dtype=torch.float64),
        "c": torch.tensor(C),
        "w": torch.tensor(W, dtype=torch.float64, requires_grad=True),
    }
    y = CASES[expr](**leaves)
    J = (y * y).sum() / 2
    J.backward()

    np.testing.assert_allclose(snap.node("y").value, y.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert snap.node("y").shape == tuple(y.shape)
    np.testing.assert_allclose(snap.node("J").value, J.item(), rtol=1e-5)
    for name in ("z", "p", "w"):
        expected = leaves[name].grad
        node = snap.node(name)
        if expected is None:  # the expression does not use this leaf: no gradient flows
            assert node.grad is None, name
        else:
            np.testing.assert_allclose(node.grad, expected.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def test_one_hot_is_torchs_one_hot_as_floats_and_routes_no_gradient_to_the_indices():
    import torch.nn.functional as F

    session = Session(parse_preset(
        'output = "J"\n[tensors.c]\nrole = "input"\ndtype = "int"\nvalue = [[0, 2], [1, 2]]\n'
        '[tensors.w]\nrole = "parameter"\n'
        'value = [[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [[7.0, 8.0, 9.0], [1.5, 2.5, 3.5]]]\n'
        '[[steps]]\nname = "J"\nexpr = "sum(w * one_hot(c, 3))"\n', source="one_hot.toml"))
    expected = F.one_hot(torch.tensor([[0, 2], [1, 2]]), 3).float().numpy()
    w = session.snapshot.node("w")
    assert session.snapshot.loss == pytest.approx(float((w.value * expected).sum()))
    np.testing.assert_array_equal(w.grad, expected)
