"""Preset steps compiled once into closures that call torch directly.

`expr.evaluate` with `TorchOps` walks the expression tree and checks shapes and dtypes at
every operation. That is what loading needs (the checks run on data-free stand-ins and name
the step that does not fit) but not what each edit needs: an edit changes values, never
shapes or dtypes, so a preset that loaded has passed those checks for good. A compiled
step makes the same torch calls as TorchOps, without the walk and the checks:

- a subexpression of constants alone is worked out once, by TorchOps itself;
- every operation uses TorchOps' own tables (`_BINARY`, `_UNARY`, `_LOSSES`) and its
  `as_tensor` where TorchOps uses it, so values, gradients and grad_fn names are the same
  (tests/engine/test_compiled.py holds the two paths equal on every bundled preset).

If torch raises anyway (an out-of-range class index, say), the graph re-runs that step
through TorchOps to word the error as loading would.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from backprop_tui.engine.errors import ComputeError
from backprop_tui.engine.expr import BinOp, Call, Expr, ModuleCall, Neg, Num, Ref, Transpose, evaluate
from backprop_tui.engine.expr import INDEX, SHAPE_FUNCS
from backprop_tui.engine.ops import _BINARY, _LOSSES, _POOLS, _STATS, _UNARY, TorchOps, index_key, pool, routing, stats

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
    if func in _UNARY:
        fn, (arg,) = _UNARY[func], args
        return lambda env: fn(arg(env))
    if func in ("sum", "mean"):
        fn, (arg,) = (torch.sum if func == "sum" else torch.mean), args
        if "dim" in kwargs:
            dim, keepdim = kwargs["dim"], kwargs.get("keepdim", False)
            return lambda env: fn(arg(env), dim=dim, keepdim=keepdim)
        return lambda env: fn(arg(env))
    if func == INDEX:
        return _index(args[0], kwargs["items"], args[1:])
    if func in SHAPE_FUNCS:
        (arg,), sizes = args, kwargs["shape"]
        if func == "view":
            return lambda env: arg(env).view(sizes)
        return lambda env: arg(env).reshape(sizes)
    if func in ("max", "min", "argmax"):
        (arg,) = args
        return lambda env: routing(func, arg(env), kwargs)
    if func in _POOLS:
        (arg,) = args
        return lambda env: pool(func, arg(env), kwargs)
    if func in _STATS:
        (arg,) = args
        return lambda env: stats(func, arg(env), kwargs)
    if func in ("softmax", "log_softmax"):
        fn, (arg,) = (torch.softmax if func == "softmax" else torch.log_softmax), args
        dim = kwargs.get("dim", -1)
        return lambda env: fn(arg(env), dim=dim)
    loss, (pred, target) = _LOSSES[func], args
    reduction = kwargs.get("reduction", "mean")
    if func == "cross_entropy":
        return lambda env: _cross_entropy(pred(env), target(env), reduction)
    return lambda env: loss(pred(env), target(env), reduction=reduction)


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


def _cross_entropy(logits: torch.Tensor, classes: torch.Tensor, reduction: str) -> torch.Tensor:
    # torch silently ignores class -100 (its ignore_index); refuse every index outside the
    # classes, and let the checked path word the error
    if classes.numel() and (int(classes.min()) < 0 or int(classes.max()) >= logits.shape[1]):
        raise IndexError("class index out of range")
    return F.cross_entropy(logits, classes, reduction=reduction)


def _transposed(t: torch.Tensor) -> torch.Tensor:
    return t.T if t.dim() == 2 else t
