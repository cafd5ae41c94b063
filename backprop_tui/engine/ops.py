"""The torch meaning of each expression operation, with clear errors.

Used twice: on real tensors to compute (graph.py), and on data-free stand-ins to check
shapes when a preset loads (shapes.py).
"""

from __future__ import annotations

import math
import operator
from typing import Any, Callable

import torch
import torch.nn.functional as F

from backprop_tui.engine.errors import BackpropError
from backprop_tui.engine.expr import INDEX, SHAPE_FUNCS, Ops

_UNARY = {
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "exp": torch.exp,
    "log": torch.log,
    "sqrt": torch.sqrt,
    "abs": torch.abs,
}
_LOSSES = {
    "mse": F.mse_loss,
    "bce": F.binary_cross_entropy,
    "bce_with_logits": F.binary_cross_entropy_with_logits,
    "cross_entropy": F.cross_entropy,
}
# Python's operators, as the seed writes them: `g**2` with a plain number is PowBackward0.
_BINARY = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "**": operator.pow,
    "@": operator.matmul,
}
_TORCH_ERRORS = (RuntimeError, ValueError, TypeError, IndexError)
# max/min with a dim give (values, indices): a step holds the values, as `.values` in torch
_ROUTING = {"max": torch.max, "min": torch.min}
_STATS = {"var": torch.var, "std": torch.std}
_POOLS = {"max_pool2d": F.max_pool2d, "avg_pool2d": F.avg_pool2d}
# functions that take an int tensor or give one
_INT_FUNCS = ("cross_entropy", INDEX, "argmax", *SHAPE_FUNCS)


def routing(func: str, x: torch.Tensor, kwargs: dict[str, Any]) -> torch.Tensor:
    """max/min (values) and argmax, with PyTorch's meaning and keywords."""
    if func == "argmax":
        return torch.argmax(x, dim=kwargs.get("dim"), keepdim=kwargs.get("keepdim", False))
    if "dim" in kwargs:
        return _ROUTING[func](x, dim=kwargs["dim"], keepdim=kwargs.get("keepdim", False)).values
    return _ROUTING[func](x)


def stats(func: str, x: torch.Tensor, kwargs: dict[str, Any]) -> torch.Tensor:
    """var/std, torch's default correction=1 (Bessel's) unless told otherwise."""
    return _STATS[func](
        x, dim=kwargs.get("dim"), keepdim=kwargs.get("keepdim", False), correction=kwargs.get("correction", 1)
    )


def pool(func: str, x: torch.Tensor, kwargs: dict[str, Any]) -> torch.Tensor:
    """max_pool2d/avg_pool2d with PyTorch's meaning: stride defaults to kernel_size."""
    k = kwargs["kernel_size"]
    return _POOLS[func](x, k, kwargs.get("stride", k), kwargs.get("padding", 0))


def pool_problem(func: str, shape: tuple[int, ...], kwargs: dict[str, Any]) -> tuple[str, str] | None:
    """(what, why) for a pooling call torch must not see, from the shape alone."""
    if len(shape) not in (3, 4):
        what = f"{func}() needs [batch, channels, height, width] or [channels, height, width]"
        return what, f"got shape {list(shape)}"
    if "kernel_size" not in kwargs:
        return f"{func}() needs kernel_size=", f"e.g. {func}(x, kernel_size=2)"
    k, p = kwargs["kernel_size"], kwargs.get("padding", 0)
    s = kwargs.get("stride", k)
    if k < 1 or s < 1 or p < 0:
        return f"{func}() sizes", "kernel_size and stride must be positive, padding 0 or more"
    if p > k // 2:
        return f"{func}(padding={p})", f"padding must be at most half the kernel size, {k // 2}"
    h, w = shape[-2:]
    if k > h + 2 * p or k > w + 2 * p:
        why = f"kernel size {k} is larger than the input's height, width {[h, w]} (padding {p})"
        return f"{func}() kernel too large", why
    return None


def index_key(items: tuple, tensors: list[torch.Tensor], device: str = "cpu") -> tuple:
    """The Python index torch gets for x[...]: ints, slices and int tensors."""
    key: list[Any] = []
    for kind in items:
        if kind[0] == "int":
            key.append(kind[1])
        elif kind[0] == "slice":
            key.append(slice(*kind[1:]))
        elif kind[0] == "range":
            key.append(torch.arange(kind[1], device=device))
        else:
            key.append(tensors[kind[1] - 1])
    return tuple(key)


def index_shape(shape: tuple[int, ...], items: tuple, tensor_shapes: list[tuple[int, ...]]) -> tuple[int, ...] | None:
    """The shape x[...] has, or None if the int tensors do not broadcast together. Int
    tensors and ranges broadcast to one shape, which stands where they stand if they are
    side by side and first otherwise (numpy's rule); an int removes its dimension."""
    if len(items) > len(shape):
        return None
    advanced: tuple[int, ...] = ()
    where: list[int] = []
    plain: list[int] = []
    first = 0  # where the advanced block goes among the plain dimensions
    for i, kind in enumerate(items):
        if kind[0] == "slice":
            plain.append(len(range(*slice(*kind[1:]).indices(shape[i]))))
        elif kind[0] in ("range", "tensor"):
            b = broadcast(advanced, (kind[1],) if kind[0] == "range" else tensor_shapes[kind[1] - 1])
            if b is None:
                return None
            if not where:
                first = len(plain)
            advanced = b
            where.append(i)
    plain.extend(shape[len(items):])
    if not where:
        return tuple(plain)
    if where != list(range(where[0], where[0] + len(where))):
        first = 0
    return tuple(plain[:first]) + advanced + tuple(plain[first:])


def _shape(x: Any) -> str:
    return str(list(x.shape)) if isinstance(x, torch.Tensor) else "scalar"


def _is_float(x: Any) -> bool:
    return x.is_floating_point() if isinstance(x, torch.Tensor) else True


def broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """The broadcast shape of two shapes, or None if they do not broadcast.

    Plain Python: `torch.broadcast_shapes` goes through torch._refs and imports sympy
    (0.35 s and 30 MB on first use), and costs 15 µs a call.
    """
    if len(a) < len(b):
        a, b = b, a
    out = list(a)
    offset = len(a) - len(b)
    for i, d in enumerate(b):
        e = out[offset + i]
        if d == e or d == 1:
            continue
        if e == 1:
            out[offset + i] = d
        else:
            return None
    return tuple(out)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class TorchOps(Ops):
    """Evaluate an expression tree with torch, reading names from `env`."""

    # whether class indices are checked against the classes (not on shape-checking stand-ins)
    check_values = True

    def __init__(
        self,
        env: dict[str, torch.Tensor],
        call_module: Callable[[str, torch.Tensor], torch.Tensor],
        error: type[BackpropError],
        where: str,
        device: str = "cpu",
    ):
        self.env = env
        self.call_module = call_module
        self.error = error
        self.where = where
        self.device = device

    def fail(self, what: str, exc: Exception | str) -> BackpropError:
        detail = exc if isinstance(exc, str) else _first_line(exc)
        return self.error(f"{self.where}: {what}: {detail}")

    def number(self, value: float) -> float:
        # Constants stay Python numbers, as in the seed's code; `as_tensor` wraps a
        # step that is nothing but constants.
        return value

    def as_tensor(self, value: Any) -> torch.Tensor:
        if isinstance(value, torch.Tensor):
            return value
        return torch.tensor(float(value), dtype=torch.float32, device=self.device)

    def ref(self, name: str) -> torch.Tensor:
        return self.env[name]

    def binop(self, op: str, a: Any, b: Any) -> Any:
        if not isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor):
            return self._numbers(op, a, b)
        if op == "@":
            a, b = self.as_tensor(a), self.as_tensor(b)
            if a.dim() == 0 or b.dim() == 0:
                raise self.fail("'@' needs tensors, not scalars", f"shapes {_shape(a)} and {_shape(b)}; use '*'")
            inner_a = a.shape[-1]
            inner_b = b.shape[-2] if b.dim() >= 2 else b.shape[0]
            if inner_a != inner_b:
                raise self.fail(
                    "shape mismatch in '@'",
                    f"{_shape(a)} @ {_shape(b)}: inner sizes {inner_a} and {inner_b} differ",
                )
        elif isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
            if broadcast(tuple(a.shape), tuple(b.shape)) is None:
                raise self.fail(f"shape mismatch in '{op}'", f"shapes {_shape(a)} and {_shape(b)} do not broadcast")
        if _is_float(a) != _is_float(b):
            raise self.fail(
                f"'{op}' mixes an int tensor with a float one", "int tensors are class indices for cross_entropy"
            )
        try:
            return self._binary(op, a, b)
        except _TORCH_ERRORS as exc:
            raise self.fail(f"cannot compute '{op}' on shapes {_shape(a)} and {_shape(b)}", exc) from None

    def _binary(self, op: str, a: Any, b: Any) -> Any:
        """The torch call itself, once the operands are checked (shapes.py looks first)."""
        return _BINARY[op](a, b)

    def _numbers(self, op: str, a: float, b: float) -> float:
        if op == "@":
            raise self.fail("'@' needs tensors", f"{a!r} @ {b!r} multiplies two numbers; use '*'")
        try:
            result = _BINARY[op](a, b)
        except (ZeroDivisionError, OverflowError, ValueError) as exc:
            raise self.fail(f"cannot compute {a!r} {op} {b!r}", exc) from None
        if isinstance(result, complex):
            raise self.fail(f"cannot compute {a!r} {op} {b!r}", "the result is not a real number")
        return result

    def neg(self, a: Any) -> Any:
        return -a

    def transpose(self, a: Any) -> torch.Tensor:
        a = self.as_tensor(a)
        if a.dim() > 2:
            raise self.fail("'.T' needs at most 2 dimensions", f"got shape {_shape(a)}")
        # A scalar or a vector is its own transpose (torch deprecates .T on them).
        return a.T if a.dim() == 2 else a

    def call(self, func: str, args: list[Any], kwargs: dict[str, Any]) -> torch.Tensor:
        args = [self.as_tensor(a) for a in args]
        if func == INDEX:
            return self.index(args[0], kwargs["items"], args[1:])
        if func not in _INT_FUNCS and any(not a.is_floating_point() for a in args):
            raise self.fail(
                f"{func}() needs float tensors", "int tensors are indices (x[i]) or classes for cross_entropy"
            )
        try:
            if func in SHAPE_FUNCS:
                return self.reshape(func, args[0], kwargs["shape"])
            if func in _UNARY:
                return _UNARY[func](args[0])
            if func in ("sum", "mean"):
                op = torch.sum if func == "sum" else torch.mean
                if "dim" in kwargs:
                    return op(args[0], dim=kwargs["dim"], keepdim=kwargs.get("keepdim", False))
                return op(args[0])
            dim = kwargs.get("dim")
            if dim is not None and not -max(args[0].dim(), 1) <= dim < max(args[0].dim(), 1):
                raise self.fail(f"{func}(dim={dim})", f"dim is out of range for shape {_shape(args[0])}")
            if func in ("max", "min", "argmax"):
                if args[0].numel() == 0:
                    raise self.fail(f"{func}() of an empty tensor", f"shape {_shape(args[0])}")
                return routing(func, args[0], kwargs)
            if func in _POOLS:
                problem = pool_problem(func, tuple(args[0].shape), kwargs)
                if problem is not None:
                    raise self.fail(*problem)
                return pool(func, args[0], kwargs)
            if func in _STATS:
                if kwargs.get("correction", 1) < 0:
                    raise self.fail(f"{func}(correction=...)", "must be 0 or more")
                return stats(func, args[0], kwargs)
            if func in ("softmax", "log_softmax"):
                op = torch.softmax if func == "softmax" else torch.log_softmax
                return op(args[0], dim=kwargs.get("dim", -1))
            return self._loss(func, args, kwargs)
        except BackpropError:
            raise
        except _TORCH_ERRORS as exc:
            shapes = ", ".join(_shape(a) for a in args)
            raise self.fail(f"cannot compute {func}() on shapes {shapes}", exc) from None

    def reshape(self, func: str, x: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
        known = math.prod(d for d in sizes if d != -1)
        n = x.numel()
        if (n % known if -1 in sizes else n != known) or (-1 in sizes and n == 0):
            raise self.fail(
                f"{func}() does not fit",
                f"shape {_shape(x)} has {n:,} elements, which do not fill {list(sizes)}",
            )
        return x.reshape(sizes) if func == "reshape" else x.view(sizes)

    def index(self, x: torch.Tensor, items: tuple, tensors: list[torch.Tensor]) -> torch.Tensor:
        """x[...] with PyTorch's meaning; an int tensor picks rows (its backward sums the
        gradient of every pick into the row it picked, so repeated picks accumulate)."""
        if x.dim() < len(items):
            raise self.fail("too many indices", f"{len(items)} for a tensor of shape {_shape(x)}")
        for t in tensors:
            if t.is_floating_point():
                raise self.fail(
                    "an index must be an int tensor", "give the tensor dtype = \"int\" (a float tensor cannot pick)"
                )
        for i, kind in enumerate(items):
            size = x.shape[i]
            if kind[0] == "int" and not -size <= kind[1] < size:
                raise self.fail("index out of range", f"{kind[1]} in dimension {i} of size {size} (shape {_shape(x)})")
            if kind[0] == "range" and kind[1] > size:
                raise self.fail(
                    "index out of range", f"range({kind[1]}) in dimension {i} of size {size} (shape {_shape(x)})"
                )
            if kind[0] == "tensor" and self.check_values:
                t = tensors[kind[1] - 1]
                if t.numel() and (int(t.min()) < -size or int(t.max()) >= size):
                    bad = int(t.max()) if int(t.max()) >= size else int(t.min())
                    raise self.fail("index out of range", f"{bad} in dimension {i} of size {size} (shape {_shape(x)})")
        shape = index_shape(tuple(x.shape), items, [tuple(t.shape) for t in tensors])
        if shape is None:
            raise self.fail(
                "the int tensors of an index do not broadcast together", ", ".join(_shape(t) for t in tensors)
            )
        self.check_size(shape)
        try:
            return x[index_key(items, tensors, self.device)]
        except _TORCH_ERRORS as exc:
            raise self.fail(f"cannot index shape {_shape(x)}", exc) from None

    def check_size(self, shape: tuple[int, ...]) -> None:
        """A result's shape before torch makes it (shapes.py refuses one past the limit)."""

    def _loss(self, func: str, args: list[torch.Tensor], kwargs: dict[str, Any]) -> torch.Tensor:
        pred, target = args
        reduction = kwargs.get("reduction", "mean")
        if func == "cross_entropy":
            if target.is_floating_point():
                raise self.fail("cross_entropy() needs class indices", "give the target dtype = \"int\"")
            if pred.dim() != 2 or target.shape != pred.shape[:1]:
                raise self.fail(
                    "shape mismatch in cross_entropy()",
                    f"logits {_shape(pred)} need shape [batch, classes] and targets [batch]; "
                    f"got targets {_shape(target)}",
                )
            if self.check_values and target.numel():
                low, high = int(target.min()), int(target.max())
                if low < 0 or high >= pred.shape[1]:
                    bad = low if low < 0 else high
                    raise self.fail(
                        "class index out of range in cross_entropy()",
                        f"{bad} is not a class of 0..{pred.shape[1] - 1}",
                    )
        elif pred.shape != target.shape:
            raise self.fail(
                f"shape mismatch in {func}()", f"prediction {_shape(pred)} and target {_shape(target)} differ"
            )
        return _LOSSES[func](pred, target, reduction=reduction)

    def module(self, name: str, x: Any) -> torch.Tensor:
        x = self.as_tensor(x)
        try:
            return self.call_module(name, x)
        except BackpropError as exc:
            if str(exc).startswith(self.where):
                raise
            raise self.error(f"{self.where}: {exc}") from None  # the module's own line, with its step
        except _TORCH_ERRORS as exc:
            raise self.fail(f"cannot apply {name}() to shape {_shape(x)}", exc) from None


def evaluate_step(tree, ops: TorchOps) -> torch.Tensor:
    """A step's value as a tensor (a step of constants alone evaluates to a number)."""
    from backprop_tui.engine.expr import evaluate

    return ops.as_tensor(evaluate(tree, ops))
