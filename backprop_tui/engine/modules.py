"""The torch.nn modules a preset can declare: one `ModuleKind` per type, in one place.

A kind says which options its table takes, the shapes of its parameters, what input it
accepts (checked from shapes alone, so a wrong input is one clear line before torch
runs), the shape of its output (worked out in plain Python, so an oversized result is
refused before memory is used), the real `torch.nn` module, and the same computation
as a function of given parameters (for the shape check on stand-ins and for the
analyses that re-run one step).

This module imports torch only inside the functions that need it: a preset's options
are validated without torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

Shape = tuple[int, ...]
Options = dict[str, Any]


@dataclass(frozen=True)
class Option:
    """One key of a module's table: a positive integer (`minimum` 1), a non-negative one
    (`minimum` 0), a number, or a list of `pair` integers where one integer may stand for all."""

    key: str
    default: Any = None  # None: required
    minimum: int = 1
    pair: int = 0  # 1 for Conv1d's sizes, 2 for Conv2d's; 0: a single integer
    number: bool = False  # a positive float (eps)
    list_ok: bool = False  # LayerNorm's normalized_shape: an integer or a list of them


@dataclass(frozen=True)
class ModuleKind:
    type: str
    options: tuple[Option, ...]
    bias_optional: bool  # whether the table takes bias = false
    parameters: Callable[[Options], dict[str, Shape]]  # name -> shape, in torch's order
    weight_layout: Callable[[Options], str]  # "[out_features, in_features]", for messages
    check_input: Callable[[str, Options, Shape, bool], str | None]  # a one-line problem, or None
    output_shape: Callable[[Options, Shape], Shape]
    build: Callable[[Options, bool], Any]  # (options, has_bias) -> torch.nn.Module
    functional: Callable[[Options, Any, dict[str, Any]], Any]  # (options, x, parameters) -> tensor
    # multiply-adds of one call on an input of this shape (the products of Linear and the convolutions)
    multiply_adds: Callable[[Options, Shape], int] = lambda o, shape: 0
    buffers: tuple[str, ...] = ()  # shown, not differentiated (BatchNorm's running statistics)
    rule: str = ""  # the local derivative in words, for the inspector


def sizes(value: Any, n: int) -> tuple[int, ...]:
    """An option given as one integer or a list of n: always n integers."""
    return tuple(value) if isinstance(value, list) else (value,) * n


def _shape_text(shape: Shape) -> str:
    return str(list(shape))


# ---------------------------------------------------------------- Linear


def _linear_input(name: str, o: Options, shape: Shape, is_float: bool) -> str | None:
    if not shape or shape[-1] != o["in_features"]:
        n = o["in_features"]
        return f"{name}() expects inputs with last dimension {n} (in_features), got shape {_shape_text(shape)}"
    if not is_float:
        return f"{name}() needs a float input, got an int tensor"
    return None


def _linear_build(o: Options, bias: bool):
    import torch

    return torch.nn.Linear(o["in_features"], o["out_features"], bias=bias)


def _linear(o: Options, x, p: dict):
    import torch.nn.functional as F

    return F.linear(x, p["weight"], p.get("bias"))


LINEAR = ModuleKind(
    "Linear",
    (Option("in_features"), Option("out_features")),
    bias_optional=True,
    parameters=lambda o: {"weight": (o["out_features"], o["in_features"]), "bias": (o["out_features"],)},
    weight_layout=lambda o: "[out_features, in_features]",
    check_input=_linear_input,
    output_shape=lambda o, s: s[:-1] + (o["out_features"],),
    build=_linear_build,
    functional=_linear,
    multiply_adds=lambda o, s: math.prod(s[:-1]) * o["in_features"] * o["out_features"],
    rule="Z = X·Wᵀ + b: ∂Z/∂X gives G·W, ∂Z/∂W gives Gᵀ·X, ∂Z/∂b gives G summed over samples",
)

# ---------------------------------------------------------------- Embedding


def _embedding_input(name: str, o: Options, shape: Shape, is_float: bool) -> str | None:
    if is_float:
        return f"{name}() needs an int tensor of indices (dtype = \"int\"), got a float tensor"
    return None


def _embedding_build(o: Options, bias: bool):
    import torch

    return torch.nn.Embedding(o["num_embeddings"], o["embedding_dim"])


def _embedding(o: Options, x, p: dict):
    import torch.nn.functional as F

    return F.embedding(x, p["weight"])


EMBEDDING = ModuleKind(
    "Embedding",
    (Option("num_embeddings"), Option("embedding_dim")),
    bias_optional=False,
    parameters=lambda o: {"weight": (o["num_embeddings"], o["embedding_dim"])},
    weight_layout=lambda o: "[num_embeddings, embedding_dim]",
    check_input=_embedding_input,
    output_shape=lambda o, s: s + (o["embedding_dim"],),
    build=_embedding_build,
    functional=_embedding,
    rule="E = W[idx]: row idx of W is picked; ∂/∂W adds the grad of every pick into its row (repeats accumulate)",
)


def embedding_index_problem(name: str, o: Options, x) -> str | None:
    """An index outside the table (torch would say only 'index out of range in self')."""
    if x.numel() == 0:
        return None
    low, high = int(x.min()), int(x.max())
    if low < 0 or high >= o["num_embeddings"]:
        bad = low if low < 0 else high
        return f"{name}(): index {bad} is out of range for {o['num_embeddings']} embeddings (num_embeddings)"
    return None


# ---------------------------------------------------------------- LayerNorm


def _normalized(o: Options) -> Shape:
    value = o["normalized_shape"]
    return tuple(value) if isinstance(value, list) else (value,)


def _layer_norm_input(name: str, o: Options, shape: Shape, is_float: bool) -> str | None:
    normalized = _normalized(o)
    if shape[len(shape) - len(normalized):] != normalized or len(shape) < len(normalized):
        expected = _shape_text(normalized)
        return f"{name}() expects inputs ending in {expected} (normalized_shape), got shape {_shape_text(shape)}"
    if not is_float:
        return f"{name}() needs a float input, got an int tensor"
    return None


def _layer_norm_build(o: Options, bias: bool):
    import torch

    return torch.nn.LayerNorm(_normalized(o), eps=o["eps"])


def _layer_norm(o: Options, x, p: dict):
    import torch.nn.functional as F

    return F.layer_norm(x, _normalized(o), p["weight"], p["bias"], eps=o["eps"])


LAYER_NORM = ModuleKind(
    "LayerNorm",
    (Option("normalized_shape", list_ok=True), Option("eps", 1e-5, number=True)),
    bias_optional=False,
    parameters=lambda o: {"weight": _normalized(o), "bias": _normalized(o)},
    weight_layout=lambda o: "normalized_shape",
    check_input=_layer_norm_input,
    output_shape=lambda o, s: s,
    build=_layer_norm_build,
    functional=_layer_norm,
    rule=(
        "y = γ·x̂ + β with x̂ = (x − mean)/√(var + eps) over each sample's last dims: every output of a sample "
        "depends on every input of it; ∂/∂γ = G·x̂, ∂/∂β = G, summed over samples"
    ),
)

# ---------------------------------------------------------------- BatchNorm1d


def _batch_norm_input(name: str, o: Options, shape: Shape, is_float: bool) -> str | None:
    c = o["num_features"]
    if len(shape) not in (2, 3) or shape[1] != c:
        return (
            f"{name}() expects inputs of shape [batch, {c}] or [batch, {c}, length] (num_features = {c}), "
            f"got shape {_shape_text(shape)}"
        )
    if not is_float:
        return f"{name}() needs a float input, got an int tensor"
    if math.prod(shape) // c < 2:
        return (
            f"{name}() in training mode needs more than one value per feature (a batch of 2 or more), "
            f"got shape {_shape_text(shape)}"
        )
    return None


def _batch_norm_build(o: Options, bias: bool):
    import torch

    return torch.nn.BatchNorm1d(o["num_features"], eps=o["eps"], momentum=o["momentum"])


def _batch_norm(o: Options, x, p: dict):
    import torch.nn.functional as F

    # training mode, as the module: batch statistics (the running ones are not inputs)
    return F.batch_norm(x, None, None, p["weight"], p["bias"], training=True, eps=o["eps"])


BATCH_NORM_1D = ModuleKind(
    "BatchNorm1d",
    (Option("num_features"), Option("eps", 1e-5, number=True), Option("momentum", 0.1, number=True)),
    bias_optional=False,
    parameters=lambda o: {"weight": (o["num_features"],), "bias": (o["num_features"],)},
    weight_layout=lambda o: "[num_features]",
    check_input=_batch_norm_input,
    output_shape=lambda o, s: s,
    build=_batch_norm_build,
    functional=_batch_norm,
    buffers=("running_mean", "running_var"),
    rule=(
        "training mode: y = γ·x̂ + β with x̂ = (x − μ_B)/√(σ²_B + eps), batch mean and biased batch variance per "
        "feature: every output of a feature depends on every sample's input; ∂/∂γ = Σ G·x̂, ∂/∂β = Σ G"
    ),
)

# ---------------------------------------------------------------- Conv1d / Conv2d


def _conv_options(dims: int) -> tuple[Option, ...]:
    return (
        Option("in_channels"),
        Option("out_channels"),
        Option("kernel_size", pair=dims),
        Option("stride", 1, pair=dims),
        Option("padding", 0, minimum=0, pair=dims),
    )


def _conv(dims: int) -> ModuleKind:
    names = ("length",) if dims == 1 else ("height", "width")
    kernel = "kernel_size" if dims == 1 else "kernel_height, kernel_width"
    layout = f"[out_channels, in_channels, {kernel}]"
    kind_name = f"Conv{dims}d"

    def k(o: Options, key: str) -> tuple[int, ...]:
        return sizes(o[key], dims)

    def check(name: str, o: Options, shape: Shape, is_float: bool) -> str | None:
        c = o["in_channels"]
        spatial = ", ".join(names)
        if len(shape) not in (dims + 1, dims + 2) or shape[-dims - 1] != c:
            return (
                f"{name}() expects inputs of shape [batch, {c}, {spatial}] or [{c}, {spatial}] "
                f"(in_channels = {c}), got shape {_shape_text(shape)}"
            )
        if not is_float:
            return f"{name}() needs a float input, got an int tensor"
        padded = tuple(s + 2 * p for s, p in zip(shape[-dims:], k(o, "padding")))
        if any(kk > s for kk, s in zip(k(o, "kernel_size"), padded)):
            kernel = k(o, "kernel_size")
            return (
                f"{name}(): kernel size {list(kernel) if dims > 1 else kernel[0]} is larger than the input's "
                f"{spatial} {list(shape[-dims:]) if dims > 1 else shape[-1]} (padding {o['padding']})"
            )
        return None

    def output(o: Options, shape: Shape) -> Shape:
        out = tuple(
            (s + 2 * p - kk) // st + 1
            for s, p, kk, st in zip(shape[-dims:], k(o, "padding"), k(o, "kernel_size"), k(o, "stride"))
        )
        return shape[: -dims - 1] + (o["out_channels"],) + out

    def build(o: Options, bias: bool):
        import torch

        layer = torch.nn.Conv1d if dims == 1 else torch.nn.Conv2d
        return layer(o["in_channels"], o["out_channels"], k(o, "kernel_size"), stride=k(o, "stride"),
                     padding=k(o, "padding"), bias=bias)

    def functional(o: Options, x, p: dict):
        import torch.nn.functional as F

        conv = F.conv1d if dims == 1 else F.conv2d
        return conv(x, p["weight"], p.get("bias"), stride=k(o, "stride"), padding=k(o, "padding"))

    return ModuleKind(
        kind_name,
        _conv_options(dims),
        bias_optional=True,
        parameters=lambda o: {
            "weight": (o["out_channels"], o["in_channels"]) + k(o, "kernel_size"),
            "bias": (o["out_channels"],),
        },
        weight_layout=lambda o: layout,
        check_input=check,
        output_shape=output,
        build=build,
        functional=functional,
        # each output element sums in_channels x kernel products
        multiply_adds=lambda o, s: math.prod(output(o, s)) * o["in_channels"] * math.prod(k(o, "kernel_size")),
        rule=(
            "Y = W ⋆ X + b (a cross-correlation): ∂L/∂W is the correlation of the input X with the output's grad G, "
            "∂L/∂X is G convolved with the flipped kernel (a full correlation), ∂L/∂b sums G over samples and positions"
        ),
    )


CONV_1D = _conv(1)
CONV_2D = _conv(2)

KINDS: dict[str, ModuleKind] = {
    kind.type: kind for kind in (LINEAR, EMBEDDING, LAYER_NORM, BATCH_NORM_1D, CONV_1D, CONV_2D)
}
MODULE_TYPES = tuple(KINDS)


def parameter_shapes(kind: ModuleKind, options: Options, has_bias: bool) -> dict[str, Shape]:
    shapes = kind.parameters(options)
    if not has_bias:
        shapes.pop("bias", None)
    return shapes
