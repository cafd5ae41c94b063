"""The torch meaning of each expression operation, with clear errors.

Used twice: on real tensors to compute (graph.py), and on data-free stand-ins to check
shapes when a preset loads (shapes.py).
"""

from __future__ import annotations

import operator
from typing import Any, Callable

import torch

from backprop_tui.engine.errors import BackpropError
from backprop_tui.engine.expr import INDEX, Ops
from backprop_tui.engine.functions import FUNCTIONS

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
_INT_ARITHMETIC = "int tensors are indices (x[i]) or classes for cross_entropy, not numbers to compute with"


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
        if not (_is_float(a) and _is_float(b)):
            raise self.fail(f"'{op}' on an int tensor", _INT_ARITHMETIC)
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
        if not _is_float(a):
            raise self.fail("'-' on an int tensor", _INT_ARITHMETIC)
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
        fn = FUNCTIONS[func]
        if any(not a.is_floating_point() and i not in fn.int_args for i, a in enumerate(args)):
            raise self.fail(
                f"{func}() needs float tensors", "int tensors are indices (x[i]) or classes for cross_entropy"
            )
        try:
            refused = fn.refuse(func, args, kwargs, self.check_values) if fn.refuse else None
            if refused is not None:
                raise self.fail(*refused)
            if fn.result_shape is not None:  # cat, one_hot: larger than any argument
                self.check_size(fn.result_shape([tuple(a.shape) for a in args], {**fn.defaults, **kwargs}))
            return fn.bind(kwargs)(*args)
        except BackpropError:
            raise
        except _TORCH_ERRORS as exc:
            shapes = ", ".join(_shape(a) for a in args)
            raise self.fail(f"cannot compute {func}() on shapes {shapes}", exc) from None

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
        """A result's shape before torch makes it, where it can be larger than every operand
        (an index, cat, one_hot): shapes.py refuses one past the limit."""

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
