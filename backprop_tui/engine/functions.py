"""Every function of the preset language, defined once.

An entry says what a function is called, its arguments and keywords, the torch call,
what its local derivative is with respect to each argument (a formula in the expression
language, which the inspector prints and tests evaluate against autograd), the rule in
words the inspector prints beside it, whether it is pointwise, and what it flags. The
parser, the interpreter (ops.TorchOps), the compiled path, the shape check, the inspector
and docs/presets.md's function table all read it.

This module does not import torch when it loads (the explorer paints before torch is
imported): torch calls are named as text ("torch.relu") and resolved on first use.

A local derivative's formula reads the function's argument names, `N` (the number of
elements a mean divides by: 1 for reduction='sum'), the keywords (`correction`), `G`
(the grad arriving at the result) and the helpers in `HELPERS` (which may read the call's
keywords: leaky_relu's negative_slope, gelu's approximate). Its value is, for each
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
    dims: int = 0  # the arguments after the first are this many dimensions, negative from the end (transpose(x, 0, 1))
    variadic: bool = False  # the last argument may repeat: cat(a, b, c)
    view: bool = False  # the result holds the argument's elements rearranged: it makes no new ones
    # (shapes, kwargs) -> the result's shape, for a function whose result can be larger than every
    # argument: the shape check refuses one past the limit before torch makes it
    result_shape: Callable | None = None
    rule: str = ""  # the rule in words the inspector prints beside a step that calls it
    adapt: Callable | None = None  # (torch_fn, kwargs) -> callable of tensors, where fn(*args, **kwargs) is not it
    # (name, args, kwargs, check_values) -> (what, why) or None: a call torch must not see
    refuse: Callable | None = None

    @property
    def signature(self) -> str:
        return self.example or f"{self.name}({', '.join(self.args)})"

    @property
    def numbers(self) -> str | None:
        """The keyword of a Call that holds the whole numbers written after the tensor."""
        return "shape" if self.sizes else "dims" if self.dims else None

    def arity(self) -> str:
        """How many positional arguments a call takes, in words."""
        n = len(self.args)
        return f"{n} or more arguments" if self.variadic else f"{n} argument(s)"

    def local_at(self, position: int) -> Local | None:
        """The local derivative for the argument at `position` (a repeated one shares the last's)."""
        return self.local[min(position, len(self.local) - 1)]

    def arg_name(self, position: int) -> str:
        return self.args[min(position, len(self.args) - 1)]

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


def _cat_refuse(name, args, kwargs, check_values):
    first, dim = args[0], kwargs.get("dim", 0)
    n = first.dim()
    if n == 0:
        return f"{name}() of a scalar", "only tensors of 1 or more dimensions can be joined; reshape(x, 1) makes one"
    if not -n <= dim < n:
        return f"{name}(dim={dim})", f"dim is out of range for shape {list(first.shape)}"
    along = dim % n
    for other in args[1:]:
        if other.dim() != n or any(a != b for i, (a, b) in enumerate(zip(first.shape, other.shape)) if i != along):
            why = f"shapes {list(first.shape)} and {list(other.shape)} must be equal except along dim {dim}"
            return f"shape mismatch in {name}()", why
    return None


def _cat_shape(shapes, kwargs):
    along = kwargs["dim"] % len(shapes[0])
    return tuple(sum(s[along] for s in shapes) if i == along else d for i, d in enumerate(shapes[0]))


def _one_hot_shape(shapes, kwargs):
    return tuple(shapes[0]) + tuple(kwargs["shape"])


def _transpose_refuse(name, args, kwargs, check_values):
    shape = list(args[0].shape)
    n = max(len(shape), 1)
    for d in kwargs["dims"]:
        if not -n <= d < n:
            return f"{name}() dimension out of range", f"{d} is not a dimension of shape {shape}"
    return None


def _flatten_refuse(name, args, kwargs, check_values):
    shape = list(args[0].shape)
    n = max(len(shape), 1)
    start, end = kwargs.get("start_dim", 0), kwargs.get("end_dim", -1)
    for key, d in (("start_dim", start), ("end_dim", end)):
        if not -n <= d < n:
            return f"{name}({key}={d})", f"{key} is out of range for shape {shape}"
    if start % n > end % n:
        return f"{name}(start_dim={start}, end_dim={end})", f"start_dim comes after end_dim in shape {shape}"
    return None


# ---------------------------------------------------------------- calls that are not fn(*args, **kwargs)


def _joined(fn, kwargs):
    """torch.cat takes its tensors as one sequence."""
    dim = kwargs["dim"]
    return lambda *tensors: fn(tensors, dim=dim)


def _swapped(fn, kwargs):
    dim0, dim1 = kwargs["dims"]
    return lambda x: fn(x, dim0, dim1)


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
_MOVED = "each element keeps its value in a new place; its grad comes back from there"

FUNCTIONS: dict[str, Function] = {}


def _add(fn: Function) -> None:
    FUNCTIONS[fn.name] = fn


_add(Function(
    "relu", ("z",), "torch.relu", "max(z, 0), elementwise. Its derivative at exactly 0 is 0.",
    pointwise=True, flags=("dead", "kink"),
    local=(Local("relu_slope(z)", "relu'(z) = 1 if z > 0 else 0"),),
    rule="relu'(z) = 1 if z > 0 else 0"))
_add(Function(
    "sigmoid", ("z",), "torch.sigmoid", "1 / (1 + e^(-z)), elementwise.",
    pointwise=True, flags=("saturates",),
    local=(Local("sigmoid(z) * (1 - sigmoid(z))"),),
    rule="σ'(z) = σ(z)(1 − σ(z))"))
_add(Function(
    "tanh", ("z",), "torch.tanh", "Hyperbolic tangent, elementwise.",
    pointwise=True, flags=("saturates",),
    local=(Local("1 - tanh(z) ** 2"),),
    rule="tanh'(z) = 1 − tanh²(z)"))
_add(Function(
    "exp", ("z",), "torch.exp", "e^z, elementwise.",
    pointwise=True, local=(Local("exp(z)"),),
    rule="exp'(z) = exp(z)"))
_add(Function(
    "log", ("z",), "torch.log", "Natural logarithm, elementwise (nan for negative z, -inf at 0).",
    pointwise=True, local=(Local("1 / z"),),
    rule="log'(z) = 1/z"))
_add(Function(
    "sqrt", ("z",), "torch.sqrt", "Square root, elementwise.",
    pointwise=True, local=(Local("1 / (2 * sqrt(z))"),),
    rule="sqrt'(z) = 1/(2√z)"))
_add(Function(
    "abs", ("z",), "torch.abs", "Absolute value, elementwise.",
    pointwise=True, flags=("kink",),
    local=(Local("sign(z)", "sign(z) is 1 or −1, and 0 at z = 0 as PyTorch takes it"),),
    rule="abs'(z) = sign(z) (0 at z = 0 in PyTorch)"))
_add(Function(
    "gelu", ("z",), "F.gelu",
    "z·Φ(z), elementwise, where Φ is the standard normal distribution function; `approximate='tanh'` uses "
    "PyTorch's approximation Φ(z) ≈ (1 + tanh(√(2/π)(z + 0.044715z³)))/2.",
    keywords={"approximate": ("none", "tanh")}, pointwise=True,
    local=(Local("normal_cdf(z) + z * normal_pdf(z)",
                 "Φ is the standard normal distribution function and φ its density; with approximate='tanh', "
                 "Φ's approximation and its slope"),),
    rule="gelu'(z) = Φ(z) + z·φ(z): the gate Φ(z), plus z times the gate's slope"))
_add(Function(
    "leaky_relu", ("z",), "F.leaky_relu",
    "z where z > 0, else negative_slope·z, elementwise. Its derivative at exactly 0 is negative_slope, "
    "as PyTorch takes it.",
    keywords={"negative_slope": float}, defaults={"negative_slope": 0.01}, pointwise=True, flags=("kink",),
    local=(Local("leaky_slope(z)", "leaky_relu'(z) = 1 if z > 0 else negative_slope"),),
    rule="leaky_relu'(z) = 1 if z > 0 else negative_slope: a negative input still passes a little gradient"))
_add(Function(
    "sum", ("x",), "torch.sum",
    "Sum of all elements (a scalar); with `dim=d`, along dimension d (negative counts from the end); "
    "`keepdim=True` keeps that dimension with size 1 (only with `dim=`).",
    keywords=_REDUCE, local=(Local("1", "every element adds to its sum with slope 1"),),
    rule="∂ sum(z)/∂zᵢ = 1 for every element"))
_add(Function(
    "mean", ("x",), "torch.mean", "Mean of all elements, or along `dim`, as for `sum`.",
    keywords=_REDUCE, local=(Local("1 / N", "N elements are averaged"),),
    rule="∂ mean(z)/∂zᵢ = 1/N for each of the N elements"))
_add(Function(
    "softmax", ("z",), "torch.softmax", "e^z / Σ e^z along `dim`.",
    keywords={"dim": int}, defaults={"dim": -1}, refuse=_dim_in_range,
    local=(Local("softmax_of(z) * (G - sum_of(G * softmax_of(z)))", _ALONG_DIM),),
    rule="∂sᵢ/∂zⱼ = sᵢ(δᵢⱼ − sⱼ) with s = softmax(z)"))
_add(Function(
    "log_softmax", ("z",), "torch.log_softmax", "log(softmax(z)) along `dim`, computed stably.",
    keywords={"dim": int}, defaults={"dim": -1}, refuse=_dim_in_range,
    local=(Local("G - softmax_of(z) * sum_of(G)", _ALONG_DIM),),
    rule="∂ log sᵢ/∂zⱼ = δᵢⱼ − sⱼ with s = softmax(z)"))
# a loss's rule names both arguments: the target's derivative is not the prediction's
_add(Function(
    "mse", ("p", "y"), "F.mse_loss", "Mean squared error of a prediction p and a target y of the same shape.",
    keywords=_REDUCTION, refuse=_same_shapes,
    local=(Local("2 * (p - y) / N"), Local("2 * (y - p) / N")),
    rule="∂/∂p mean((p − y)²) = 2(p − y)/N, ∂/∂y = 2(y − p)/N"))
_add(Function(
    "bce", ("p", "y"), "F.binary_cross_entropy",
    "Binary cross-entropy of probabilities p (in [0, 1]) and targets y of the same shape.",
    keywords=_REDUCTION, refuse=_same_shapes,
    local=(Local("(p - y) / (p * (1 - p)) / N"), Local("(log(1 - p) - log(p)) / N")),
    rule="∂/∂p of −mean(y log p + (1 − y) log(1 − p)) = (p − y)/(p(1 − p))/N, ∂/∂y = (log(1 − p) − log p)/N"))
_add(Function(
    "bce_with_logits", ("z", "y"), "F.binary_cross_entropy_with_logits",
    "Binary cross-entropy on logits z (applies the sigmoid itself, stably) and targets y of the same shape.",
    keywords=_REDUCTION, refuse=_same_shapes,
    local=(Local("(sigmoid(z) - y) / N"), Local("-z / N")),
    rule="∂/∂z of bce(σ(z), y) = (σ(z) − y)/N, ∂/∂y = −z/N"))
_add(Function(
    "cross_entropy", ("z", "classes"), "F.cross_entropy",
    "Softmax cross-entropy: logits z of shape `[batch, classes]`, `classes` an int tensor of shape `[batch]` "
    "holding class indices `0 .. classes-1`.",
    keywords=_REDUCTION, int_args=(1,), refuse=_cross_entropy_refuse, adapt=_classes_checked,
    local=(Local("(softmax_of(z) - onehot(classes)) / N", _ONEHOT),
           None),
    rule="∂/∂zᵢ = (softmax(z)ᵢ − onehot(class)ᵢ)/N, per sample"))
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
    result_shape=_one_hot_shape, local=(None,)))
_add(Function(
    "reshape", ("x",), "torch.reshape",
    "The same elements in a new shape, given as whole numbers after the tensor; one size may be `-1`, "
    "worked out from the others. The sizes must hold exactly the elements of `x`.",
    example="reshape(x, 32, -1)", sizes=True, int_args=(0,), view=True, adapt=_reshaped, refuse=_reshape_refuse,
    local=(Local("1", _MOVED),)))
_add(Function(
    "view", ("x",), "Tensor.view",
    "As `reshape`, for a tensor whose memory layout allows it (a transposed one does not: use `reshape`).",
    example="view(x, 32, -1)", sizes=True, int_args=(0,), view=True, adapt=_reshaped, refuse=_reshape_refuse,
    local=(Local("1", _MOVED),)))
_add(Function(
    "transpose", ("x",), "torch.transpose",
    "`x` with two dimensions swapped, given as whole numbers after the tensor (negative counts from the end); "
    "`transpose(x, 0, 1)` of a matrix is `x.T`.",
    example="transpose(x, 0, 1)", dims=2, int_args=(0,), view=True, adapt=_swapped, refuse=_transpose_refuse,
    local=(Local("1", _MOVED),),
    rule="transpose: the incoming grad has the same two dimensions swapped back"))
_add(Function(
    "flatten", ("x",), "torch.flatten",
    "The dimensions `start_dim` .. `end_dim` of `x` (both included; negative counts from the end) merged into "
    "one: `flatten(x, start_dim=1)` turns `[batch, channels, height, width]` into `[batch, channels·height·width]`.",
    example="flatten(x, start_dim=1)", keywords={"start_dim": int, "end_dim": int},
    defaults={"start_dim": 0, "end_dim": -1}, int_args=(0,), view=True, refuse=_flatten_refuse,
    local=(Local("1", _MOVED),),
    rule="flatten: the incoming grad is reshaped back to the input's shape"))
_add(Function(
    "cat", ("a", "b"), "torch.cat",
    "Two or more tensors joined along `dim` (negative counts from the end), in order: `cat(a, b, c, dim=1)`. "
    "Their shapes are equal except along `dim`, where the result's size is the sum of theirs.",
    example="cat(a, b, dim=1)", keywords={"dim": int}, defaults={"dim": 0}, variadic=True,
    adapt=_joined, refuse=_cat_refuse, result_shape=_cat_shape,
    local=(Local("1", _MOVED), Local("1", _MOVED)),
    rule="cat: the incoming grad is cut along dim into pieces the sizes of the arguments, one back to each"))
_POOL = {"kernel_size": int, "stride": int, "padding": int}
_add(Function(
    "max_pool2d", ("x",), "F.max_pool2d",
    "The largest element of each `kernel_size`×`kernel_size` window of the last two dimensions of `x` "
    "(`[batch, channels, height, width]` or `[channels, height, width]`). `kernel_size` is required; `stride` "
    "defaults to `kernel_size` (windows side by side), `padding` (at most half the kernel) to 0. The gradient of "
    "each window goes to the position of its maximum only; the rest of the window gets 0.",
    example="max_pool2d(x, kernel_size=2)", keywords=_POOL, adapt=_pooled, refuse=_pool_refuse,
    local=(Local("at_window_max(x)", "at_window_max(x) counts the windows whose maximum x is, 0 elsewhere"),),
    rule="max pooling: each window's gradient goes to the position of its maximum, 0 to the rest"))
_add(Function(
    "avg_pool2d", ("x",), "F.avg_pool2d",
    "The mean of each window, with the keywords of `max_pool2d` (padding counts as zeros in the mean). Every "
    "element of a window gets an equal share, G / kernel_size², of the window's gradient.",
    example="avg_pool2d(x, kernel_size=2)", keywords=_POOL, adapt=_pooled, refuse=_pool_refuse,
    local=(Local("in_windows(x) / kernel_size ** 2", "in_windows(x) counts the windows x is in"),),
    rule="average pooling: each element of a window gets G / kernel_size² of the window's gradient"))

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

    def keyword(self, name: str) -> Any:
        """A keyword's value in this call: as written, else the function's default."""
        fn = FUNCTIONS.get(self.func)
        if name in self.kwargs or fn is None:
            return self.kwargs.get(name)
        kind = fn.keywords.get(name)
        return fn.defaults.get(name, kind[0] if isinstance(kind, tuple) else None)

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


def _leaky_slope(x, call):
    """leaky_relu'(z): PyTorch's backward takes the negative slope wherever z > 0 fails, 0 included."""
    return (x > 0).to(x.dtype) + call.keyword("negative_slope") * (x <= 0).to(x.dtype)


_GELU_TANH = math.sqrt(2 / math.pi), 0.044715  # PyTorch's constants of approximate='tanh'


def _normal_cdf(x, call):
    """Φ(z), or its tanh approximation where the call says approximate='tanh'."""
    import torch

    if call.keyword("approximate") == "tanh":
        k, c = _GELU_TANH
        return (1 + torch.tanh(k * (x + c * x**3))) / 2
    return (1 + torch.erf(x / math.sqrt(2))) / 2


def _normal_pdf(x, call):
    """φ(z) = Φ'(z), or the slope of Φ's tanh approximation."""
    import torch

    if call.keyword("approximate") == "tanh":
        k, c = _GELU_TANH
        t = torch.tanh(k * (x + c * x**3))
        return (1 - t * t) * k * (1 + 3 * c * x * x) / 2
    return torch.exp(-x * x / 2) / math.sqrt(2 * math.pi)


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
    "leaky_slope": Helper("leaky_relu'", _leaky_slope),
    "normal_cdf": Helper("Φ", _normal_cdf),
    "normal_pdf": Helper("φ", _normal_pdf),
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
