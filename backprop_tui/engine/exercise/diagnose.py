"""Why a wrong answer is wrong, when that can be told. Each diagnosis is computed from the
tensors (the answer, autograd's gradient, the forward values), never guessed from the text:

- a broadcast dimension not summed (the shapes say which step broadcast the node, over which dims);
- the transpose; the sign flipped; off by a constant factor (and which);
- the part sent back by one consumer only (each consumer's part computed on its own edge
  with torch.autograd.grad);
- right except at a kink (relu, abs at 0) or at the argmax of a max/min.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Mapping

import torch

from backprop_tui.engine.expr import BinOp, Call, Expr, ModuleCall, Neg, Ref, Transpose
from backprop_tui.engine.functions import FUNCTIONS
from backprop_tui.engine.ops import TorchOps, evaluate_step

_FACTOR_RTOL = 1e-4  # a fitted factor carries rounding; allclose's 1e-5 is too tight for it


@dataclass(frozen=True)
class Consumer:
    """A step that reads the node: its name, its text, its tree."""

    name: str
    text: str
    tree: Expr


@dataclass(frozen=True)
class Context:
    """What a diagnosis may look at for one node."""

    node: str
    value: torch.Tensor  # the node's forward value
    grad: torch.Tensor  # autograd's gradient of the node
    consumers: tuple[Consumer, ...]
    values: Mapping[str, torch.Tensor]  # every forward value
    grads: Mapping[str, torch.Tensor]  # autograd's gradient of every node that has one
    call_module: Callable[[Mapping[str, torch.Tensor], str, torch.Tensor], torch.Tensor]


def diagnose(ctx: Context, given: torch.Tensor) -> str:
    """One sentence saying why `given` is not the gradient, or "" if it cannot be told."""
    expected = ctx.grad
    if tuple(given.shape) != tuple(expected.shape):
        return _shape(ctx, given)
    for check in (_transpose, _sign, _factor, _one_consumer, _kink_or_argmax):
        text = check(ctx, given)
        if text:
            return text
    return _where_worst(given, expected)


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-5) -> bool:
    return tuple(a.shape) == tuple(b.shape) and bool(torch.allclose(a, b, rtol=rtol, atol=1e-8))


def _dims(shape) -> str:
    return str(list(shape))


# ---------------------------------------------------------------- shape


def _shape(ctx: Context, given: torch.Tensor) -> str:
    g, e = tuple(given.shape), tuple(ctx.grad.shape)
    head = f"{_dims(g)} given, {_dims(e)} expected"
    if len(g) == 2 and g == e[::-1] and _close(given.T, ctx.grad):
        return f"{head}: it is the transpose of the gradient; add .T"
    if given.numel() == ctx.grad.numel():
        if _close(given.reshape(e), ctx.grad):
            how = "sum with keepdim=True, or reshape" if len(e) > len(g) else "reshape it"
            return f"{head}: the right numbers in the wrong shape: {how}"
        return f"{head}: as many numbers, but not the gradient's"
    summed = _broadcast_dims(g, e)
    if summed is None:
        return head
    step = next((c for c in ctx.consumers if tuple(ctx.values[c.name].shape) == g), None)
    keep = len(e) == len(g)
    advice = ("sum over it" if len(summed) == 1 else "sum over them") + (", keepdim" if keep else "")
    dims = f"dim {summed[0]}" if len(summed) == 1 else "dims " + ", ".join(map(str, summed))
    if step is not None:
        text = f"{head}: {ctx.node} was broadcast over {dims} in `{step.name} = {step.text}`: {advice}"
    else:  # no step broadcast it: say only what the shapes say
        text = f"{head}: the shape of {ctx.node} is {_dims(e)}: {advice} ({dims})"
    total = given.sum(dim=summed, keepdim=True).reshape(e)
    if not _close(total, ctx.grad):
        text += f" (summed, it is still off: maxdiff {float((total - ctx.grad).abs().max()):.3g})"
    return text


def _broadcast_dims(given: tuple[int, ...], expected: tuple[int, ...]) -> tuple[int, ...] | None:
    """The dims of `given` that broadcasting `expected` to it created or stretched, or None
    if `expected` does not broadcast to `given`."""
    if len(expected) > len(given):
        return None
    padded = (1,) * (len(given) - len(expected)) + expected
    if any(p not in (1, d) for p, d in zip(padded, given)):
        return None
    new = len(given) - len(expected)  # leading dims broadcasting added
    dims = tuple(i for i, (p, d) in enumerate(zip(padded, given)) if p == 1 and (d != 1 or i < new))
    return dims or None


# ---------------------------------------------------------------- same shape


def _transpose(ctx: Context, given: torch.Tensor) -> str:
    square = given.dim() == 2 and given.shape[0] == given.shape[1]
    if square and not _close(given, ctx.grad) and _close(given.T, ctx.grad):
        return "it is the transpose of the gradient; add .T"
    return ""


def _sign(ctx: Context, given: torch.Tensor) -> str:
    if bool(given.abs().max() > 0) and _close(-given, ctx.grad):
        return "the sign is flipped: the gradient is minus your answer"
    return ""


def _factor(ctx: Context, given: torch.Tensor) -> str:
    g, t = given.double(), ctx.grad.double()
    norm = float((g * g).sum())
    if norm == 0 or not math.isfinite(norm):
        return ""
    c = float((g * t).sum()) / norm
    if not math.isfinite(c) or c == 0 or abs(c - 1) < 1e-4 or abs(c + 1) < 1e-4:
        return ""
    if not _close((g * c).float(), ctx.grad, rtol=_FACTOR_RTOL):
        return ""
    return f"off by a constant factor: the gradient is {nice_number(c)} × your answer"


def nice_number(c: float) -> str:
    """2, 1/32, -31/32: a small fraction when one fits, else 4 significant digits."""
    frac = Fraction(c).limit_denominator(1024)
    if frac.denominator != 1 and abs(float(frac) - c) <= _FACTOR_RTOL * abs(c):
        return f"{frac.numerator}/{frac.denominator}"
    if abs(round(c) - c) <= _FACTOR_RTOL * abs(c):
        return str(round(c))
    return f"{c:.4g}"


def consumer_parts(ctx: Context) -> dict[str, torch.Tensor]:
    """Each consumer's part of the gradient: autograd.grad of that step alone (the node a
    fresh leaf, every other input a constant), weighted by autograd's gradient of the step."""
    parts: dict[str, torch.Tensor] = {}
    for consumer in ctx.consumers:
        if consumer.name not in ctx.grads:
            continue
        env = {name: t.detach() for name, t in ctx.values.items()}
        leaf = ctx.value.detach().clone().requires_grad_(True)
        env[ctx.node] = leaf
        ops = TorchOps(env, lambda name, x, env=env: ctx.call_module(env, name, x), RuntimeError, consumer.name)
        with torch.enable_grad():
            out = evaluate_step(consumer.tree, ops)
            if not out.requires_grad:
                continue
            (part,) = torch.autograd.grad(out, leaf, grad_outputs=ctx.grads[consumer.name], allow_unused=True)
        if part is not None:
            parts[consumer.name] = part
    return parts


def _one_consumer(ctx: Context, given: torch.Tensor) -> str:
    if len(ctx.consumers) < 2:
        return ""
    names = [c.name for c in ctx.consumers]
    for name, part in consumer_parts(ctx).items():
        if _close(given, part) and not _close(part, ctx.grad):
            others = " and ".join(n for n in names if n != name)
            return (
                f"{ctx.node} has {len(names)} consumers; your answer matches the one through {name} only: "
                f"add the part through {others}"
            )
    return ""


def _kink_or_argmax(ctx: Context, given: torch.Tensor) -> str:
    wrong = ~torch.isclose(given, ctx.grad)
    if not bool(wrong.any()):
        return ""
    for consumer in ctx.consumers:
        for func, kwargs in _calls_on(consumer.tree, ctx.node):
            mask = _special_points(func, kwargs, ctx.value)
            if mask is None or bool((wrong & ~mask).any()):
                continue  # some differences lie elsewhere
            n = int(wrong.sum())
            where = f"`{consumer.name} = {consumer.text}`"
            if _has_kink(func):
                return f"right except at {n} element(s) where {ctx.node} is 0, the kink of {func} in {where}"
            what = "largest" if func == "max" else "smallest"
            return (
                f"right except at {n} element(s) at the arg{func} ({what} element) of {where}: the gradient goes there"
            )
    return ""


def _calls_on(tree: Expr, node: str):
    """(function, keywords) of every call in `tree` applied directly to `node`."""
    match tree:
        case Call(func, args, kwargs):
            if args and isinstance(args[0], Ref) and args[0].name == node:
                yield func, dict(kwargs)
            for a in args:
                yield from _calls_on(a, node)
        case ModuleCall(_, arg) | Neg(arg) | Transpose(arg):
            yield from _calls_on(arg, node)
        case BinOp(_, left, right):
            yield from _calls_on(left, node)
            yield from _calls_on(right, node)


def _has_kink(func: str) -> bool:
    """relu, abs, leaky_relu, ...: what the registry flags as not differentiable at 0."""
    return func in FUNCTIONS and "kink" in FUNCTIONS[func].flags


def _special_points(func: str, kwargs: dict, x: torch.Tensor) -> torch.Tensor | None:
    if _has_kink(func):
        return x == 0
    if func in ("max", "min"):
        pick = torch.amax if func == "max" else torch.amin
        if "dim" in kwargs:
            return x == pick(x, dim=kwargs["dim"], keepdim=True)
        return x == pick(x)
    return None


def _where_worst(given: torch.Tensor, expected: torch.Tensor) -> str:
    diff = (given - expected).abs()
    if given.numel() == 0 or not bool(torch.isfinite(diff).any()):
        return "not the gradient" + ("" if bool(torch.isfinite(given).all()) else ": it holds nan or inf")
    flat = int(torch.nan_to_num(diff, nan=math.inf).reshape(-1).argmax())
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), tuple(given.shape))) if given.dim() else ()
    where = f"[{', '.join(map(str, index))}]" if index else ""
    wrong = int((~torch.isclose(given, expected)).sum())
    return (
        f"{wrong} of {given.numel()} elements differ; the largest difference is at {where or 'the value'}: "
        f"yours {float(given[index]):.4g}, autograd's {float(expected[index]):.4g}"
    )
