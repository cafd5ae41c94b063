"""Preset steps compiled once into closures that call torch directly.

`expr.evaluate` with `TorchOps` walks the expression tree and checks shapes and dtypes at
every operation. That is what loading needs (the checks run on data-free stand-ins and name
the step that does not fit) but not what each edit needs: an edit changes values, never
shapes or dtypes, so a preset that loaded has passed those checks for good. A compiled
step makes the same torch calls as TorchOps, without the walk and the checks:

- a subexpression of constants alone is worked out once, by TorchOps itself;
- every operation uses TorchOps' own operator table (`_BINARY`), the registry's torch
  call of each function (`functions.Function.bind`) and TorchOps' `as_tensor` where
  TorchOps uses it, so values, gradients and grad_fn names are the same
  (tests/engine/test_compiled.py holds the two paths equal on every bundled preset).

If torch raises anyway (an out-of-range class index, say), the graph re-runs that step
through TorchOps to word the error as loading would.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from backprop_tui.engine.errors import ComputeError
from backprop_tui.engine.expr import BinOp, Call, Expr, ModuleCall, Neg, Num, Ref, Transpose, evaluate
from backprop_tui.engine.expr import INDEX
from backprop_tui.engine.functions import FUNCTIONS
from backprop_tui.engine.ops import _BINARY, TorchOps, index_key

Env = dict[str, torch.Tensor]
Step = Callable[[Env], torch.Tensor]
Part = Callable[[Env], Any]

_CONSTANTS = TorchOps({}, lambda name, x: x, ComputeError, "constant")  # works out constant subexpressions
as_tensor = _CONSTANTS.as_tensor


def compile_step(tree: Expr, modules: dict[str, torch.nn.Linear]) -> Step:
    """A function env -> tensor computing `tree` with the same torch calls as TorchOps."""
    if _is_constant(tree):  # a step of constants alone: a tensor of its own on each run
        value = evaluate(tree, _CONSTANTS)
        return lambda env: as_tensor(value)
    return _compile(tree, modules)


def _is_constant(tree: Expr) -> bool:
    match tree:
        case Num():
            return True
        case BinOp(_, left, right):
            return _is_constant(left) and _is_constant(right)
        case Neg(operand):
            return _is_constant(operand)
    return False


def _compile(tree: Expr, modules: dict[str, torch.nn.Linear]) -> Part:
    if _is_constant(tree):
        value = evaluate(tree, _CONSTANTS)
        return lambda env: value
    match tree:
        case Ref(name):
            return lambda env: env[name]
        case BinOp(op, left, right):
            if op == "@":
                return _binary(_BINARY[op], _tensor(left, modules), _tensor(right, modules))
            return _binary(_BINARY[op], _compile(left, modules), _compile(right, modules))
        case Neg(operand):
            inner = _compile(operand, modules)
            return lambda env: -inner(env)
        case Transpose(operand):
            inner = _tensor(operand, modules)
            # as TorchOps.transpose: a scalar or vector is its own transpose
            return lambda env: _transposed(inner(env))
        case Call(func, args, kwargs):
            return _call(func, [_tensor(a, modules) for a in args], dict(kwargs))
        case ModuleCall(module, arg):
            layer = modules[module]
            inner = _tensor(arg, modules)
            return lambda env: layer(inner(env))  # the real torch.nn module
    raise TypeError(f"unknown expression node {tree!r}")  # pragma: no cover


def _tensor(tree: Expr, modules: dict[str, torch.nn.Linear]) -> Part:
    """`tree` as a tensor, where TorchOps would call as_tensor on it.

    Only constants are numbers: a subexpression that reads a name or calls a function is
    a tensor already, so it is handed on as it is.
    """
    part = _compile(tree, modules)
    if _is_constant(tree):
        return lambda env: as_tensor(part(env))  # a tensor of its own on each run, as TorchOps makes it
    return part


def _binary(fn, left: Part, right: Part) -> Part:
    return lambda env: fn(left(env), right(env))


def _call(func: str, args: list[Part], kwargs: dict) -> Part:
    if func == INDEX:
        return _index(args[0], kwargs["items"], args[1:])
    fn = FUNCTIONS[func].bind(kwargs)  # the registry's torch call, as TorchOps makes it
    if len(args) == 1:
        (arg,) = args
        return lambda env: fn(arg(env))
    return lambda env: fn(*(a(env) for a in args))


def _index(target: Part, items: tuple, tensors: list[Part]) -> Part:
    fixed = index_key(items, [None] * len(tensors))  # type: ignore[list-item]  # ints, slices, ranges made once
    slots = [i for i, kind in enumerate(items) if kind[0] == "tensor"]

    def run(env: Env) -> torch.Tensor:
        x = target(env)
        key = list(fixed)
        for slot, part in zip(slots, tensors):
            t = part(env)
            size = x.shape[slot]
            # an edited index may leave the rows: let the checked path word the error
            if t.numel() and (int(t.min()) < -size or int(t.max()) >= size):
                raise IndexError("index out of range")
            key[slot] = t
        return x[tuple(key)]

    return run


def _transposed(t: torch.Tensor) -> torch.Tensor:
    return t.T if t.dim() == 2 else t
