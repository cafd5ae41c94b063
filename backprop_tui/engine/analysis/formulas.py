"""The registry's local derivatives as numbers: a formula evaluated on a call's tensors.

The inspector prints a function's local derivative from its registry formula; this module
evaluates the same formula with the same torch ops, so what is printed can be checked
against autograd (tests/engine/test_local_formulas.py) and used where a slope is needed
(flags.py's saturation).
"""

from __future__ import annotations

from typing import Any

import torch

from backprop_tui.engine.analysis.symbolic import local_formula
from backprop_tui.engine.errors import ComputeError
from backprop_tui.engine.expr import Expr, evaluate, parse_expression
from backprop_tui.engine.functions import FUNCTIONS, HELPERS, CallContext, averaged
from backprop_tui.engine.ops import TorchOps


class _FormulaOps(TorchOps):
    """TorchOps that also knows the helpers of the formulas (relu', onehot, ...)."""

    def __init__(self, env: dict[str, torch.Tensor], call: CallContext):
        super().__init__(env, lambda name, x: x, ComputeError, f"the local derivative of {call.func}()")
        self.context = call

    def call(self, func: str, args: list[Any], kwargs: dict[str, Any]) -> torch.Tensor:
        helper = HELPERS.get(func)
        if helper is not None:
            return helper.compute(self.as_tensor(args[0]), self.context)
        return super().call(func, args, kwargs)


def evaluate_formula(tree: Expr, env: dict[str, torch.Tensor], call: CallContext | None = None) -> torch.Tensor:
    """A formula's tree evaluated on `env` (names to tensors), helpers included."""
    ops = _FormulaOps(env, call or CallContext("", {}, {}))
    with torch.no_grad():
        return ops.as_tensor(evaluate(tree, ops))


def uses_grad(func: str, position: int) -> bool:
    """Whether the formula is a vector-Jacobian product (it reads G, the grad arriving)."""
    local = FUNCTIONS[func].local_at(position)
    return local is not None and "G" in _names(local.formula)


def _names(formula: str) -> set[str]:
    return set(parse_expression(formula, set(HELPERS)).names)


def local_value(func: str, position: int, args: list[torch.Tensor], kwargs: dict[str, Any],
                grad: torch.Tensor | None = None) -> torch.Tensor | None:
    """The formula's value for each element of the argument at `position` (its shape), or
    None where no gradient flows. `grad` (G) is needed by the formulas that read it."""
    tree = local_formula(func, position)
    if tree is None:
        return None
    fn = FUNCTIONS[func]
    call = CallContext(func, dict(zip(fn.args, args)), kwargs)
    x = args[position]
    env: dict[str, torch.Tensor] = dict(call.args)
    env["N"] = torch.tensor(float(averaged(call, fn.arg_name(position))), dtype=x.dtype)
    env["correction"] = torch.tensor(float(kwargs.get("correction", 1)), dtype=x.dtype)
    if "kernel_size" in kwargs:
        env["kernel_size"] = torch.tensor(float(kwargs["kernel_size"]), dtype=x.dtype)
    if grad is not None:
        env["G"] = grad
    value = evaluate_formula(tree, env, call)
    return value.to(x.dtype).expand(x.shape) if value.shape != x.shape else value
