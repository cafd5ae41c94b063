"""Every local derivative the registry states is autograd's, for every function and argument.

For each function of the registry (and so of docs/presets.md's table) and each argument
position, random float64 inputs go through the function's torch call; the registry's
formula, evaluated on the same inputs, must equal what torch.autograd gives:
- a formula without G: for each element of the argument, ∂result/∂argᵢ, where the
  argument's element feeds one element of the result: the Jacobian has at most one
  nonzero entry per column, and that entry is the formula's value;
- a formula with G (softmax): the vector-Jacobian product with a random G.
"""

from __future__ import annotations

import pytest
import torch

from backprop_tui.engine.analysis.formulas import local_value, uses_grad
from backprop_tui.engine.functions import FUNCTIONS

GEN = torch.Generator().manual_seed(7)


def away_from_zero(*shape):
    """Uniform magnitudes in [0.2, 2] with random signs: no kink, no tie."""
    sign = torch.randint(0, 2, shape, generator=GEN) * 2 - 1
    return sign * (0.2 + 1.8 * torch.rand(shape, generator=GEN, dtype=torch.float64))


def positive(*shape):
    return 0.2 + 1.8 * torch.rand(shape, generator=GEN, dtype=torch.float64)


def probability(*shape):
    return 0.1 + 0.8 * torch.rand(shape, generator=GEN, dtype=torch.float64)


def classes(n, k):
    return torch.randint(0, k, (n,), generator=GEN)


REDUCE = [{}, {"dim": 0}, {"dim": 1, "keepdim": True}, {"dim": -1}]
# function -> list of (arguments, keywords); every registry function has at least one
CASES: dict[str, list[tuple]] = {
    **{name: [((away_from_zero(3, 4),), {})] for name in ("relu", "sigmoid", "tanh", "exp", "abs")},
    "log": [((positive(3, 4),), {})],
    "sqrt": [((positive(3, 4),), {})],
    "sum": [((away_from_zero(3, 4),), kw) for kw in REDUCE],
    "mean": [((away_from_zero(3, 4),), kw) for kw in REDUCE],
    "max": [((away_from_zero(3, 4),), kw) for kw in REDUCE],
    "min": [((away_from_zero(3, 4),), kw) for kw in REDUCE],
    "var": [((away_from_zero(3, 4),), kw) for kw in REDUCE] + [((away_from_zero(3, 4),), {"dim": 1, "correction": 0})],
    "std": [((away_from_zero(3, 4),), kw) for kw in REDUCE] + [((away_from_zero(3, 4),), {"correction": 0})],
    "softmax": [((away_from_zero(3, 4),), kw) for kw in ({}, {"dim": 0}, {"dim": 1})],
    "log_softmax": [((away_from_zero(3, 4),), kw) for kw in ({}, {"dim": 0}, {"dim": 1})],
    "mse": [((away_from_zero(3, 4), away_from_zero(3, 4)), kw) for kw in ({}, {"reduction": "sum"})],
    "bce": [((probability(3, 4), probability(3, 4)), kw) for kw in ({}, {"reduction": "sum"})],
    "bce_with_logits": [((away_from_zero(3, 4), probability(3, 4)), kw) for kw in ({}, {"reduction": "sum"})],
    "cross_entropy": [((away_from_zero(5, 3), classes(5, 3)), kw) for kw in ({}, {"reduction": "sum"})],
    "argmax": [((away_from_zero(3, 4),), kw) for kw in ({}, {"dim": 1})],
    "one_hot": [((classes(5, 3),), {"shape": (3,)})],
    "reshape": [((away_from_zero(3, 4),), {"shape": (2, -1)})],
    "view": [((away_from_zero(3, 4),), {"shape": (12,)})],
    "gelu": [((away_from_zero(3, 4),), kw) for kw in ({}, {"approximate": "none"}, {"approximate": "tanh"})],
    "leaky_relu": [((away_from_zero(3, 4),), kw) for kw in ({}, {"negative_slope": 0.2}, {"negative_slope": -1.5})],
    "transpose": [((away_from_zero(2, 3, 4),), {"dims": d}) for d in ((0, 1), (-1, 0), (1, 1))],
    "flatten": [((away_from_zero(2, 3, 4),), kw)
                for kw in ({}, {"start_dim": 1}, {"start_dim": 0, "end_dim": 1}, {"start_dim": -2, "end_dim": -1})],
    "cat": [((away_from_zero(3, 4), away_from_zero(2, 4)), {}),
            ((away_from_zero(3, 4), away_from_zero(3, 2), away_from_zero(3, 1)), {"dim": 1}),
            ((away_from_zero(2, 2), away_from_zero(2, 3)), {"dim": -1})],
    "max_pool2d": [((away_from_zero(1, 2, 4, 6),), {"kernel_size": 2}),
                   ((away_from_zero(2, 5, 5),), {"kernel_size": 3, "padding": 1})],
    "avg_pool2d": [((away_from_zero(1, 2, 4, 6),), {"kernel_size": 2}),
                   ((away_from_zero(2, 5, 5),), {"kernel_size": 3, "padding": 1})],
}

PARAMS = [
    pytest.param(name, i, position, id=f"{name}-{i}-{position}")
    for name, cases in CASES.items()
    for i, (args, _) in enumerate(cases)
    for position in range(len(args))  # every argument of the call: cat's third too
]


def test_every_function_and_argument_is_checked():
    assert set(CASES) == set(FUNCTIONS)
    checked = {(name, position) for name, _, position in (p.values for p in PARAMS)}
    for name, fn in FUNCTIONS.items():
        assert {(name, i) for i in range(len(fn.args) + fn.variadic)} <= checked, name


@pytest.mark.parametrize("name, case, position", PARAMS)
def test_local_derivative_is_autograds(name, case, position):
    fn = FUNCTIONS[name]
    args, kwargs = CASES[name][case]
    call = fn.bind(kwargs)
    arg = args[position]
    if fn.int_result or not arg.is_floating_point():
        assert local_value(name, position, list(args), kwargs) is None  # no formula where no gradient flows
        return

    def result_of(x):
        return call(*(x if i == position else a for i, a in enumerate(args)))

    out = result_of(arg)
    if uses_grad(name, position):
        grad = torch.randn(out.shape, generator=GEN, dtype=torch.float64)
        x = arg.clone().requires_grad_(True)
        (expected,) = torch.autograd.grad(result_of(x), x, grad)
        value = local_value(name, position, list(args), kwargs, grad=grad)
        torch.testing.assert_close(value, expected, rtol=1e-10, atol=1e-12)
        return
    jacobian = torch.autograd.functional.jacobian(result_of, arg).reshape(out.numel(), arg.numel())
    assert ((jacobian != 0).sum(dim=0) <= 1).all(), "each element of the argument feeds one element of the result"
    value = local_value(name, position, list(args), kwargs)
    assert value.shape == arg.shape
    torch.testing.assert_close(value.reshape(-1), jacobian.sum(dim=0), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, kwargs", [("relu", {}), ("abs", {}), ("leaky_relu", {}),
                                          ("leaky_relu", {"negative_slope": 0.2})])
def test_at_the_kink_the_formula_takes_the_slope_pytorch_takes(name, kwargs):
    """At exactly 0 autograd picks one side's slope (relu 0, leaky_relu its negative_slope):
    the formula the inspector prints and the flag words must pick the same."""
    z = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    (expected,) = torch.autograd.grad(FUNCTIONS[name].bind(kwargs)(z).sum(), z)
    torch.testing.assert_close(local_value(name, 0, [z.detach()], kwargs), expected)
