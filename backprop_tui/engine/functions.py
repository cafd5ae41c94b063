"""Every function of the preset language, defined once.

An entry says what a function is called, its arguments and keywords, the torch call,
what its local derivative is with respect to each argument (a formula in the expression
language, which the inspector prints and tests evaluate against autograd), whether it is
pointwise, and what it flags. The parser, the interpreter (ops.TorchOps), the compiled
path, the shape check, the inspector and docs/presets.md's function table all read it.

This module does not import torch when it loads (the explorer paints before torch is
imported): torch calls are named as text ("torch.relu") and resolved on first use.

A local derivative's formula reads the function's argument names, `N` (the number of
elements a mean divides by: 1 for reduction='sum'), the keywords (`correction`), `G`
(the grad arriving at the result) and the helpers in `HELPERS`. Its value is, for each
element of the argument:
- without `G`: ∂result/∂argᵢ where argᵢ feeds one element of the result (a pointwise
  function, a reduction, a reshape: every other entry of the Jacobian is 0);
- with `G`: the vector-Jacobian product Σₖ Gₖ ∂resultₖ/∂argᵢ (softmax, whose every output
  depends on every input of its row).
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

# ---------------------------------------------------------------- entries


@dataclass(frozen=True)
class Local:
    """The local derivative with respect to one argument: a formula and how to read it."""

    formula: str  # in the expression language; see the module docstring
    words: str = ""  # what the helpers in it mean, for a reader ("relu'(z) = 1 if z > 0 else 0")


@dataclass(frozen=True)
class Function:
    name: str
    args: tuple[str, ...]  # the positional arguments, as the formulas and the docs name them
    torch: str  # the torch call, "torch.relu" or "F.mse_loss" (F is torch.nn.functional)
    meaning: str  # one or two sentences for docs/presets.md
    example: str = ""  # a call as a preset writes it; defaults to name(args)
    keywords: dict[str, type | tuple] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    pointwise: bool = False  # each result element depends on the same element of the argument alone
    flags: tuple[str, ...] = ()  # "dead" (relu units), "kink" (not differentiable at 0), "saturates"
    local: tuple[Local | None, ...] = ()  # per argument; None: no gradient (an int tensor)
    int_args: tuple[int, ...] = ()  # argument positions that may (or must) hold int tensors
    int_result: bool = False  # the result is an int tensor (no gradient flows through it)
    sizes: bool = False  # the arguments after the first are whole numbers (reshape(x, 32, -1))
    adapt: Callable | None = None  # (torch_fn, kwargs) -> callable of tensors, where fn(*args, **kwargs) is not it
    # (name, args, kwargs, check_values) -> (what, why) or None: a call torch must not see
    refuse: Callable | None = None

    @property
    def signature(self) -> str:
        return self.example or f"{self.name}({', '.join(self.args)})"

    def torch_fn(self) -> Callable:
        """The torch function itself (torch is imported on first use)."""
        fn = _RESOLVED.get(self.torch)
        if fn is None:
            owner, _, attr = self.torch.rpartition(".")
            module = importlib.import_module({"F": "torch.nn.functional", "Tensor": "torch"}.get(owner, owner))
            fn = _RESOLVED[self.torch] = getattr(module.Tensor if owner == "Tensor" else module, attr)
        return fn

    def bind(self, kwargs: dict[str, Any]) -> Callable:
        """The torch call with these keywords, a function of the tensor arguments alone.
        Both the interpreter and the compiled path call it, so they make the same graph."""
        fn = self.torch_fn()
        kwargs = {**self.defaults, **kwargs}
        if self.adapt is not None:
            return self.adapt(fn, kwargs)
        return partial(fn, **kwargs) if kwargs else fn


_RESOLVED: dict[str, Callable] = {}

# ---------------------------------------------------------------- what a call must not be


def _dim_in_range(name, args, kwargs, check_values):
    dim = kwargs.get("dim")
    n = max(args[0].dim(), 1)
    if dim is not None and not -n <= dim < n:
        return f"{name}(dim={dim})", f"dim is out of range for shape {list(args[0].shape)}"
    return None


def _routing_refuse(name, args, kwargs, check_values):
    if args[0].numel() == 0:
        return f"{name}() of an empty tensor", f"shape {list(args[0].shape)}"
    return _dim_in_range(name, args, kwargs, check_values)


def _stats_refuse(name, args, kwargs, check_values):
    if kwargs.get("correction", 1) < 0:
        return f"{name}(correction=...)", "must be 0 or more"
    return _dim_in_range(name, args, kwargs, check_values)


def _same_shapes(name, args, kwargs, check_values):
    pred, target = args
    if pred.shape != target.shape:
        return f"shape mismatch in {name}()", f"prediction {list(pred.shape)} and target {list(target.shape)} differ"
    return None


def _cross_entropy_refuse(name, args, kwargs, check_values):
    logits, classes = args
    if classes.is_floating_point():
        return "cross_entropy() needs class indices", 'give the target dtype = "int"'
    if logits.dim() != 2 or classes.shape != logits.shape[:1]:
        return (
            "shape mismatch in cross_entropy()",
            f"logits {list(logits.shape)} need shape [batch, classes] and targets [batch]; "
            f"got targets {list(classes.shape)}",
        )
    if check_values and classes.numel():
        low, high = int(classes.min()), int(classes.max())
        if low < 0 or high >= logits.shape[1]:
            bad = low if low < 0 else high
            return "class index out of range in cross_entropy()", f"{bad} is not a class of 0..{logits.shape[1] - 1}"
    return None


def _one_hot_refuse(name, args, kwargs, check_values):
    classes, sizes = args[0], kwargs["shape"]
    if len(sizes) != 1 or sizes[0] < 1:
        return f"{name}() takes class indices and one number of classes", f"got sizes {list(sizes)}"
    if classes.is_floating_point():
        return f"{name}() needs class indices", 'give the tensor dtype = "int"'
    if check_values and classes.numel():
        low, high = int(classes.min()), int(classes.max())
        if low < 0 or high >= sizes[0]:
            bad = low if low < 0 else high
            return f"class index out of range in {name}()", f"{bad} is not a class of 0..{sizes[0] - 1}"
    return None


def _reshape_refuse(name, args, kwargs, check_values):
    sizes, n = kwargs["shape"], args[0].numel()
    known = math.prod(d for d in sizes if d != -1)
    if (n % known if -1 in sizes else n != known) or (-1 in sizes and n == 0):
        why = f"shape {list(args[0].shape)} has {n:,} elements, which do not fill {list(sizes)}"
        return f"{name}() does not fit", why
    return None


# ---------------------------------------------------------------- calls that are not fn(*args, **kwargs)


def _one_hot(fn, kwargs):
    (num_classes,) = kwargs["shape"]
    return lambda classes: fn(classes, num_classes).float()  # floats, to take part in arithmetic



def _values(fn, kwargs):
    """max/min with a dim give (values, indices): a step holds the values, as `.values`."""
    if "dim" in kwargs:
        dim, keepdim = kwargs["dim"], kwargs.get("keepdim", False)
        return lambda x: fn(x, dim=dim, keepdim=keepdim).values
    return fn


def _reshaped(fn, kwargs):
    sizes = kwargs["shape"]
    return lambda x: fn(x, sizes)


def _classes_checked(fn, kwargs):
    """torch silently ignores class -100 (its ignore_index): refuse every index outside the
    classes (on the compiled path, where nothing checked first; the interpreter words it)."""
    reduction = kwargs.get("reduction", "mean")

    def call(logits, classes):
        if classes.numel() and (int(classes.min()) < 0 or int(classes.max()) >= logits.shape[1]):
            raise IndexError("class index out of range")
        return fn(logits, classes, reduction=reduction)

    return call


def _pooled(fn, kwargs):
    """max_pool2d/avg_pool2d with PyTorch's meaning: stride defaults to kernel_size."""
    k = kwargs["kernel_size"]
    stride, padding = kwargs.get("stride", k), kwargs.get("padding", 0)
    return lambda x: fn(x, k, stride, padding)


def _pool_refuse(name, args, kwargs, check_values):
    """(what, why) for a pooling call torch must not see, from the shape alone."""
    shape = tuple(args[0].shape)
    if len(shape) not in (3, 4):
        what = f"{name}() needs [batch, channels, height, width] or [channels, height, width]"
        return what, f"got shape {list(shape)}"
    if "kernel_size" not in kwargs:
        return f"{name}() needs kernel_size=", f"e.g. {name}(x, kernel_size=2)"
    k, p = kwargs["kernel_size"], kwargs.get("padding", 0)
    s = kwargs.get("stride", k)
    if k < 1 or s < 1 or p < 0:
        return f"{name}() sizes", "kernel_size and stride must be positive, padding 0 or more"
    if p > k // 2:
        return f"{name}(padding={p})", f"padding must be at most half the kernel size, {k // 2}"
    h, w = shape[-2:]
    if k > h + 2 * p or k > w + 2 * p:
        why = f"kernel size {k} is larger than the input's height, width {[h, w]} (padding {p})"
        return f"{name}() kernel too large", why
    return None


# ---------------------------------------------------------------- the functions

_REDUCE = {"dim": int, "keepdim": bool}
_REDUCTION = {"reduction": ("mean", "sum")}
_ALONG_DIM = "Σ sums along dim; G is the grad arriving at the result"
_ONEHOT = "softmax along each row; onehot(classes) is 1 at each row's class"

FUNCTIONS: dict[str, Function] = {}


def _add(fn: Function) -> None:
    FUNCTIONS[fn.name] = fn


_add(Function(
    "relu", ("z",), "torch.relu", "max(z, 0), elementwise. Its derivative at exactly 0 is 0.",
    pointwise=True, flags=("dead", "kink"),
    local=(Local("relu_slope(z)", "relu'(z) = 1 if z > 0 else 0"),)))
_add(Function(
    "sigmoid", ("z",), "torch.sigmoid", "1 / (1 + e^(-z)), elementwise.",
    pointwise=True, flags=("saturates",),
    local=(Local("sigmoid(z) * (1 - sigmoid(z))"),)))
_add(Function(
    "tanh", ("z",), "torch.tanh", "Hyperbolic tangent, elementwise.",
    pointwise=True, flags=("saturates",),
    local=(Local("1 - tanh(z) ** 2"),)))
_add(Function(
    "exp", ("z",), "torch.exp", "e^z, elementwise.",
    pointwise=True, local=(Local("exp(z)"),)))
_add(Function(
    "log", ("z",), "torch.log", "Natural logarithm, elementwise (nan for negative z, -inf at 0).",
    pointwise=True, local=(Local("1 / z"),)))
_add(Function(
    "sqrt", ("z",), "torch.sqrt", "Square root, elementwise.",
    pointwise=True, local=(Local("1 / (2 * sqrt(z))"),)))
_add(Function(
    "abs", ("z",), "torch.abs", "Absolute value, elementwise.",
    pointwise=True, flags=("kink",),
    local=(Local("sign(z)", "sign(z) is 1 or −1, and 0 at z = 0 as PyTorch takes it"),)))
_add(Function(
    "sum", ("x",), "torch.sum",
    "Sum of all elements (a scalar); with `dim=d`, along dimension d (negative counts from the end); "
    "`keepdim=True` keeps that dimension with size 1 (only with `dim=`).",
    keywords=_REDUCE, local=(Local("1", "every element adds to its sum with slope 1"),)))
_add(Function(
    "mean", ("x",), "torch.mean", "Mean of all elements, or along `dim`, as for `sum`.",
    keywords=_REDUCE, local=(Local("1 / N", "N elements are averaged"),)))
_add(Function(
    "softmax", ("z",), "torch.softmax", "e^z / Σ e^z along `dim`.",
    keywords={"dim": int}, defaults={"dim": -1}, refuse=_dim_in_range,
    local=(Local("softmax_of(z) * (G - sum_of(G * softmax_of(z)))", _ALONG_DIM),)))
_add(Function(
    "log_softmax", ("z",), "torch.log_softmax", "log(softmax(z)) along `dim`, computed stably.",
    keywords={"dim": int}, defaults={"dim": -1}, refuse=_dim_in_range,
    local=(Local("G - softmax_of(z) * sum_of(G)", _ALONG_DIM),)))
_add(Function(
    "mse", ("p", "y"), "F.mse_loss", "Mean squared error of a prediction p and a target y of the same shape.",
    keywords=_REDUCTION, refuse=_same_shapes,
    local=(Local("2 * (p - y) / N"), Local("2 * (y - p) / N"))))
_add(Function(
    "bce", ("p", "y"), "F.binary_cross_entropy",
    "Binary cross-entropy of probabilities p (in [0, 1]) and targets y of the same shape.",
    keywords=_REDUCTION, refuse=_same_shapes,
    local=(Local("(p - y) / (p * (1 - p)) / N"), Local("(log(1 - p) - log(p)) / N"))))
_add(Function(
    "bce_with_logits", ("z", "y"), "F.binary_cross_entropy_with_logits",
    "Binary cross-entropy on logits z (applies the sigmoid itself, stably) and targets y of the same shape.",
    keywords=_REDUCTION, refuse=_same_shapes,
    local=(Local("(sigmoid(z) - y) / N"), Local("-z / N"))))
_add(Function(
    "cross_entropy", ("z", "classes"), "F.cross_entropy",
    "Softmax cross-entropy: logits z of shape `[batch, classes]`, `classes` an int tensor of shape `[batch]` "
    "holding class indices `0 .. classes-1`.",
    keywords=_REDUCTION, int_args=(1,), refuse=_cross_entropy_refuse, adapt=_classes_checked,
    local=(Local("(softmax_of(z) - onehot(classes)) / N", _ONEHOT),
           None)))
_add(Function(
    "max", ("x",), "torch.max",
    "The largest element, or with `dim=` the largest along it (the values; torch's `.values`). "
    "The gradient goes to the position of the maximum only.",
    keywords=_REDUCE, refuse=_routing_refuse, adapt=_values,
    local=(Local("at_max(x)", "at_max(x) is 1 where the maximum is, 0 elsewhere"),)))
_add(Function(
    "min", ("x",), "torch.min", "The smallest element, as `max`.",
    keywords=_REDUCE, refuse=_routing_refuse, adapt=_values,
    local=(Local("at_min(x)", "at_min(x) is 1 where the minimum is, 0 elsewhere"),)))
_add(Function(
    "argmax", ("x",), "torch.argmax",
    "The position of the largest element: an int tensor, which has no gradient and can index.",
    keywords=_REDUCE, refuse=_routing_refuse, int_args=(0,), int_result=True, local=(None,)))
_add(Function(
    "var", ("x",), "torch.var",
    "Variance, Σ(x − mean)² / (n − correction); `correction=1` (the default) is Bessel's correction, "
    "`correction=0` the population variance.",
    keywords={**_REDUCE, "correction": int}, refuse=_stats_refuse,
    local=(Local("2 * (x - mean_of(x)) / (N - correction)", "N elements along dim"),)))
_add(Function(
    "std", ("x",), "torch.std", "The square root of `var`, with the same keywords.",
    keywords={**_REDUCE, "correction": int}, refuse=_stats_refuse,
    local=(Local("(x - mean_of(x)) / ((N - correction) * std_of(x))", "N elements along dim"),)))
_add(Function(
    "one_hot", ("classes",), "F.one_hot",
    "A float tensor of 0s and 1s of shape `classes.shape + [num_classes]`, 1 at each class index "
    "(`F.one_hot(classes, num_classes).float()`); `classes` is an int tensor, `num_classes` a whole number.",
    example="one_hot(classes, num_classes)", sizes=True, int_args=(0,), adapt=_one_hot, refuse=_one_hot_refuse,
    local=(None,)))
_add(Function(
    "reshape", ("x",), "torch.reshape",
    "The same elements in a new shape, given as whole numbers after the tensor; one size may be `-1`, "
    "worked out from the others. The sizes must hold exactly the elements of `x`.",
    example="reshape(x, 32, -1)", sizes=True, int_args=(0,), adapt=_reshaped, refuse=_reshape_refuse,
    local=(Local("1", "each element keeps its value in a new place; its grad comes back from there"),)))
_add(Function(
    "view", ("x",), "Tensor.view",
    "As `reshape`, for a tensor whose memory layout allows it (a transposed one does not: use `reshape`).",
    example="view(x, 32, -1)", sizes=True, int_args=(0,), adapt=_reshaped, refuse=_reshape_refuse,
    local=(Local("1", "each element keeps its value in a new place; its grad comes back from there"),)))
_POOL = {"kernel_size": int, "stride": int, "padding": int}
_add(Function(
    "max_pool2d", ("x",), "F.max_pool2d",
    "The largest element of each `kernel_size`×`kernel_size` window of the last two dimensions of `x` "
    "(`[batch, channels, height, width]` or `[channels, height, width]`). `kernel_size` is required; `stride` "
    "defaults to `kernel_size` (windows side by side), `padding` (at most half the kernel) to 0. The gradient of "
    "each window goes to the position of its maximum only; the rest of the window gets 0.",
    example="max_pool2d(x, kernel_size=2)", keywords=_POOL, adapt=_pooled, refuse=_pool_refuse,
    local=(Local("at_window_max(x)", "at_window_max(x) counts the windows whose maximum x is, 0 elsewhere"),)))
_add(Function(
    "avg_pool2d", ("x",), "F.avg_pool2d",
    "The mean of each window, with the keywords of `max_pool2d` (padding counts as zeros in the mean). Every "
    "element of a window gets an equal share, G / kernel_size², of the window's gradient.",
    example="avg_pool2d(x, kernel_size=2)", keywords=_POOL, adapt=_pooled, refuse=_pool_refuse,
    local=(Local("in_windows(x) / kernel_size ** 2", "in_windows(x) counts the windows x is in"),)))

# ---------------------------------------------------------------- helpers of the formulas


@dataclass(frozen=True)
class Helper:
    """A function that only formulas use: how it is displayed and how it is computed
    from its argument and the call it belongs to (its tensors and keywords)."""

    display: str
    compute: Callable  # (x, call) -> tensor


@dataclass(frozen=True)
class CallContext:
    """The call whose local derivative a formula describes."""

    func: str
    args: dict[str, Any]  # argument name -> tensor
    kwargs: dict[str, Any]

    def dims(self) -> tuple[int, ...] | None:
        dim = self.kwargs.get("dim", FUNCTIONS[self.func].defaults.get("dim"))
        return None if dim is None else (dim,)


def _along(x, call, reduce):
    dims = call.dims()
    return reduce(x, dims) if dims is not None else reduce(x, None)


def _at_extreme(x, call, pick):
    import torch

    dims = call.dims()
    if dims is None:  # all of x: torch shares the grad evenly between equal extremes
        hit = (x == pick(x)).to(x.dtype)
        return hit / hit.sum()
    index = (torch.argmax if pick is torch.max else torch.argmin)(x, dim=dims[0], keepdim=True)
    return torch.zeros_like(x).scatter(dims[0], index, 1.0)


def _slope_relu(x, call):
    return (x > 0).to(x.dtype)


def _pool_sizes(call):
    k = call.kwargs["kernel_size"]
    return k, call.kwargs.get("stride", k), call.kwargs.get("padding", 0)


def _at_window_max(x, call):
    """How many windows have their maximum at each element: torch's indices, counted."""
    import torch.nn.functional as F

    out, index = F.max_pool2d(x, *_pool_sizes(call), return_indices=True)
    counts = x.new_zeros(x.shape).flatten(-2)
    counts.scatter_add_(-1, index.flatten(-2), out.new_ones(out.shape).flatten(-2))
    return counts.view(x.shape)


def _windows_along(n, k, s, p):
    """How many windows cover each of the n positions of one padded axis."""
    counts = [0] * n
    for start in range(-p, n + p - k + 1, s):
        for i in range(max(start, 0), min(start + k, n)):
            counts[i] += 1
    return counts


def _in_windows(x, call):
    k, s, p = _pool_sizes(call)
    rows = x.new_tensor(_windows_along(x.shape[-2], k, s, p))
    cols = x.new_tensor(_windows_along(x.shape[-1], k, s, p))
    return (rows[:, None] * cols[None, :]).expand(x.shape)


def _sign(x, call):
    return x.sign()


def _softmax_of(x, call):
    return x.softmax(call.dims()[0] if call.func != "cross_entropy" else 1)


def _sum_of(x, call):
    return x.sum(call.dims()[0], keepdim=True)


def _mean_of(x, call):
    return _along(x, call, lambda t, d: t.mean(d, keepdim=True) if d is not None else t.mean())


def _std_of(x, call):
    c = call.kwargs.get("correction", 1)
    return _along(x, call, lambda t, d: t.std(d, keepdim=True, correction=c) if d is not None else t.std(correction=c))


def _onehot(classes, call):
    import torch

    z = call.args["z"]
    return torch.nn.functional.one_hot(classes, z.shape[1]).to(z.dtype)


def _at_max(x, call):
    import torch

    return _at_extreme(x, call, torch.max)


def _at_min(x, call):
    import torch

    return _at_extreme(x, call, torch.min)


HELPERS: dict[str, Helper] = {
    "relu_slope": Helper("relu'", _slope_relu),
    "sign": Helper("sign", _sign),
    "at_window_max": Helper("at_window_max", _at_window_max),
    "in_windows": Helper("in_windows", _in_windows),
    "softmax_of": Helper("softmax", _softmax_of),
    "sum_of": Helper("Σ", _sum_of),
    "mean_of": Helper("mean", _mean_of),
    "std_of": Helper("std", _std_of),
    "onehot": Helper("onehot", _onehot),
    "at_max": Helper("at_max", _at_max),
    "at_min": Helper("at_min", _at_min),
}


def averaged(call: CallContext, arg: str) -> int:
    """N of a formula: how many elements a mean divides by (1 for reduction='sum' and
    for functions that do not average)."""
    fn = FUNCTIONS[call.func]
    x = call.args[arg]
    if "reduction" in fn.keywords:
        if call.kwargs.get("reduction", "mean") == "sum":
            return 1
        return x.shape[0] if call.func == "cross_entropy" else x.numel()
    if call.func in ("mean", "var", "std"):
        dims = call.dims()
        return x.numel() if dims is None else x.shape[dims[0]]
    return 1


def is_function(name: str) -> bool:
    return name in FUNCTIONS
