"""Each bundled preset written out again by hand in plain torch, independent of the engine.

A reference function takes the preset's leaves (a dict name -> tensor, any dtype) and
returns every step as a dict name -> tensor, computed with ordinary torch code the way
the seed notebook writes it. Nothing here reads the preset's expressions, the parser,
graph.py or ops.py: if the engine misreads a step, these disagree with it.

`gradients` runs such a function with autograd (float64 by default); `finite_difference`
differentiates it numerically (central differences), with no autograd at all.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

Tensors = dict[str, torch.Tensor]


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """nn.Linear written out: y = x W^T + b."""
    return x @ weight.T + bias


def relu(z: torch.Tensor) -> torch.Tensor:
    """max(z, 0) with torch's convention at the kink: no gradient at z == 0."""
    return z * (z > 0)


def scalar_chain(t: Tensors) -> Tensors:
    h = t["x"] + 5
    g = h**3 + 1
    f = g**2
    return {"h": h, "g": g, "f": f}


def linear_regression(t: Tensors) -> Tensors:
    c = t["w"] * t["x"]
    f = c + t["b"]
    d = f - t["y"]
    J = d**2 / 2
    return {"c": c, "f": f, "d": d, "J": J}


def simple_nn(t: Tensors) -> Tensors:
    Z1 = linear(t["X"], t["linear1.weight"], t["linear1.bias"])
    A1 = relu(Z1)
    Z2 = linear(A1, t["linear2.weight"], t["linear2.bias"])
    A2 = relu(Z2)
    Z3 = linear(A2, t["linear3.weight"], t["linear3.bias"])
    A3 = 1 / (1 + torch.exp(-Z3))
    m = t["X"].shape[0]
    J = ((A3 - t["Y"]) ** 2).sum() / (2 * m)
    return {"Z1": Z1, "A1": A1, "Z2": Z2, "A2": A2, "Z3": Z3, "A3": A3, "J": J}


def gradient_accumulation(t: Tensors) -> Tensors:
    p = t["x"] * t["y"]
    f = p + t["x"]
    return {"p": p, "f": f}


def dead_relu(t: Tensors) -> Tensors:
    Z = linear(t["X"], t["hidden.weight"], t["hidden.bias"])
    H = relu(Z)
    logit = linear(H, t["out.weight"], t["out.bias"])
    P = 1 / (1 + torch.exp(-logit))
    J = ((P - t["Y"]) ** 2).mean()
    return {"Z": Z, "H": H, "logit": logit, "P": P, "J": J}


def cross_entropy(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Mean over samples of -log softmax(logits)[class], written out."""
    rows = torch.arange(logits.shape[0])
    return (torch.logsumexp(logits, dim=1) - logits[rows, classes.long()]).mean()


def softmax_classifier(t: Tensors) -> Tensors:
    logits = linear(t["X"], t["classifier.weight"], t["classifier.bias"])
    exp = torch.exp(logits - logits.max(dim=1, keepdim=True).values)
    probs = exp / exp.sum(dim=1, keepdim=True)
    loss = cross_entropy(logits, t["classes"])
    return {"logits": logits, "probs": probs, "loss": loss}


def mlp_784(t: Tensors) -> Tensors:
    Z1 = linear(t["X"], t["linear1.weight"], t["linear1.bias"])
    A1 = relu(Z1)
    Z2 = linear(A1, t["linear2.weight"], t["linear2.bias"])
    A2 = relu(Z2)
    logits = linear(A2, t["linear3.weight"], t["linear3.bias"])
    loss = cross_entropy(logits, t["classes"])
    return {"Z1": Z1, "A1": A1, "Z2": Z2, "A2": A2, "logits": logits, "loss": loss}


DEEP_CHAIN_LAYERS = 250


def deep_chain(t: Tensors) -> Tensors:
    """h_0 = x; a_k = w * h_(k-1) + b; h_k = tanh(a_k); J = (h_250 - y)^2 / 2."""
    out: Tensors = {}
    h = t["x"]
    for k in range(1, DEEP_CHAIN_LAYERS + 1):
        a = t["w"] * h + t["b"]
        h = torch.tanh(a)
        out[f"a{k}"], out[f"h{k}"] = a, h
    out["J"] = (h - t["y"]) ** 2 / 2
    return out


def makemore_backprop(t: Tensors) -> Tensors:
    """The forward pass of makemore part 4 ("becoming a backprop ninja"), as the notebook writes it."""
    n = t["Xb"].shape[0]
    emb = t["C"][t["Xb"]]
    embcat = emb.view(emb.shape[0], -1)
    hprebn = embcat @ t["W1"] + t["b1"]
    bnmeani = 1 / n * hprebn.sum(0, keepdim=True)
    bndiff = hprebn - bnmeani
    bndiff2 = bndiff**2
    bnvar = 1 / (n - 1) * (bndiff2).sum(0, keepdim=True)
    bnvar_inv = (bnvar + 1e-5) ** -0.5
    bnraw = bndiff * bnvar_inv
    hpreact = t["bngain"] * bnraw + t["bnbias"]
    h = torch.tanh(hpreact)
    logits = h @ t["W2"] + t["b2"]
    logit_maxes = logits.max(1, keepdim=True).values
    norm_logits = logits - logit_maxes
    counts = norm_logits.exp()
    counts_sum = counts.sum(1, keepdims=True)
    counts_sum_inv = counts_sum**-1
    probs = counts * counts_sum_inv
    logprobs = probs.log()
    loss = -logprobs[range(n), t["Yb"]].mean()
    return {
        "emb": emb, "embcat": embcat, "hprebn": hprebn, "bnmeani": bnmeani, "bndiff": bndiff,
        "bndiff2": bndiff2, "bnvar": bnvar, "bnvar_inv": bnvar_inv, "bnraw": bnraw,
        "hpreact": hpreact, "h": h, "logits": logits, "logit_maxes": logit_maxes,
        "norm_logits": norm_logits, "counts": counts, "counts_sum": counts_sum,
        "counts_sum_inv": counts_sum_inv, "probs": probs, "logprobs": logprobs, "loss": loss,
    }  # fmt: skip


def attention_head(t: Tensors) -> Tensors:
    """One causal head, as nanoGPT writes it; the mask is the preset's input (its causal
    pattern is checked against torch.triu in test_attention_head.py)."""
    x = t["x"]
    q, k, v = x @ t["Wq"], x @ t["Wk"], x @ t["Wv"]
    head_size = q.shape[1]
    scores = q @ k.transpose(0, 1) * head_size**-0.5
    masked = scores + t["mask"]
    weights = torch.exp(masked - masked.amax(dim=1, keepdim=True))
    weights = weights / weights.sum(dim=1, keepdim=True)
    out = weights @ v
    loss = ((out - t["target"]) ** 2).mean()
    return {"q": q, "k": k, "v": v, "scores": scores, "masked": masked, "weights": weights, "out": out, "loss": loss}


def batchnorm(t: Tensors) -> Tensors:
    """The makemore hidden layer normalised twice: batch norm in its textbook form (the
    twin of nn.BatchNorm1d in training mode) and as the notebook writes it out."""
    n = t["Xb"].shape[0]
    emb = t["C.weight"][t["Xb"]]
    embcat = emb.view(n, -1)
    hprebn = embcat @ t["layer1.weight"].T
    mu, var = hprebn.mean(0), hprebn.var(0, correction=0)  # batch statistics, biased variance
    hpreact_bn = t["bn.weight"] * (hprebn - mu) / torch.sqrt(var + 1e-5) + t["bn.bias"]
    bnmeani = 1 / n * hprebn.sum(0, keepdim=True)
    bndiff = hprebn - bnmeani
    bndiff2 = bndiff**2
    bnvar = 1 / n * bndiff2.sum(0, keepdim=True)
    bnvar_inv = (bnvar + 1e-5) ** -0.5
    bnraw = bndiff * bnvar_inv
    hpreact = t["bngain"] * bnraw + t["bnbias"]
    h, h_bn = torch.tanh(hpreact), torch.tanh(hpreact_bn)
    logits = linear(h, t["layer2.weight"], t["layer2.bias"])
    logits_bn = linear(h_bn, t["layer2.weight"], t["layer2.bias"])
    loss_steps, loss_bn = cross_entropy(logits, t["Yb"]), cross_entropy(logits_bn, t["Yb"])
    return {
        "emb": emb, "embcat": embcat, "hprebn": hprebn, "hpreact_bn": hpreact_bn, "bnmeani": bnmeani,
        "bndiff": bndiff, "bndiff2": bndiff2, "bnvar": bnvar, "bnvar_inv": bnvar_inv, "bnraw": bnraw,
        "hpreact": hpreact, "h": h, "h_bn": h_bn, "logits": logits, "logits_bn": logits_bn,
        "loss_steps": loss_steps, "loss_bn": loss_bn, "loss": (loss_steps + loss_bn) / 2,
    }  # fmt: skip


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """nn.LayerNorm over the last dimension, written out (biased variance)."""
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def residual_layernorm(t: Tensors) -> Tensors:
    x = t["x"]
    normed = layer_norm(x, t["ln.weight"], t["ln.bias"])
    pre = linear(normed, t["W1.weight"], t["W1.bias"])
    act = relu(pre)
    branch = linear(act, t["W2.weight"], t["W2.bias"])
    out = x + branch
    loss = ((out - t["target"]) ** 2).mean()
    return {"normed": normed, "pre": pre, "act": act, "branch": branch, "out": out, "loss": loss}


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """nn.Conv2d (stride 1, no padding) written out: each output is a kernel times the window under it."""
    kh, kw = weight.shape[-2:]
    windows = x.unfold(2, kh, 1).unfold(3, kw, 1)  # [batch, in, out_h, out_w, kh, kw]
    return torch.einsum("bchwij,ocij->bohw", windows, weight) + bias[:, None, None]


def max_pool2x2(x: torch.Tensor) -> torch.Tensor:
    """2x2 max pooling written out: each window's first largest element, picked by its index
    (as max_pool2d routes the gradient to one position)."""
    b, c, h, w = x.shape
    windows = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(b, c, h // 2, w // 2, 4)
    return windows.gather(-1, windows.argmax(-1, keepdim=True)).squeeze(-1)


def tiny_cnn(t: Tensors) -> Tensors:
    features = conv2d(t["image"], t["conv.weight"], t["conv.bias"])
    act = relu(features)
    pooled = max_pool2x2(act)
    flat = pooled.reshape(pooled.shape[0], -1)
    logits = linear(flat, t["classifier.weight"], t["classifier.bias"])
    loss = cross_entropy(logits, t["label"])
    return {"features": features, "act": act, "pooled": pooled, "flat": flat, "logits": logits, "loss": loss}


REFERENCES: dict[str, Callable[[Tensors], Tensors]] = {
    "scalar_chain": scalar_chain,
    "linear_regression": linear_regression,
    "simple_nn": simple_nn,
    "gradient_accumulation": gradient_accumulation,
    "dead_relu": dead_relu,
    "softmax_classifier": softmax_classifier,
    "mlp_784": mlp_784,
    "deep_chain": deep_chain,
    "makemore_backprop": makemore_backprop,
    "attention_head": attention_head,
    "mlp_1m": mlp_784,  # the same network, wider layers
    "batchnorm": batchnorm,
    "residual_layernorm": residual_layernorm,
    "tiny_cnn": tiny_cnn,
}

# The step each reference differentiates (the preset's output, restated by hand).
OUTPUTS = {
    "scalar_chain": "f",
    "linear_regression": "J",
    "simple_nn": "J",
    "gradient_accumulation": "f",
    "dead_relu": "J",
    "softmax_classifier": "loss",
    "mlp_784": "loss",
    "deep_chain": "J",
    "makemore_backprop": "loss",
    "attention_head": "loss",
    "mlp_1m": "loss",
    "batchnorm": "loss",
    "residual_layernorm": "loss",
    "tiny_cnn": "loss",
}

# Steps that feed a ReLU: where the function has a kink and finite differences mislead.
KINKS = {
    "simple_nn": ("Z1", "Z2"), "dead_relu": ("Z",), "mlp_784": ("Z1", "Z2"), "mlp_1m": ("Z1", "Z2"),
    "residual_layernorm": ("pre",), "tiny_cnn": ("features",),
}  # fmt: skip


def as_tensors(values: dict[str, np.ndarray], dtype: torch.dtype = torch.float64) -> Tensors:
    """Leaves as float tensors of `dtype`; integer leaves (class indices) stay int64."""
    out = {}
    for name, array in values.items():
        array = np.asarray(array)
        out[name] = torch.tensor(array, dtype=torch.int64 if array.dtype.kind == "i" else dtype)
    return out


def gradients(
    preset: str, values: dict[str, np.ndarray], wrt: set[str], dtype: torch.dtype = torch.float64
) -> tuple[Tensors, Tensors]:
    """Values and gradients (autograd, in `dtype`) of every leaf in `wrt` and of every step.

    Steps off the path to the output get no gradient (None), like retain_grad in torch.
    """
    leaves = as_tensors(values, dtype)
    for name in wrt:
        leaves[name].requires_grad_(True)
    steps = REFERENCES[preset](leaves)
    for tensor in steps.values():
        if tensor.requires_grad:
            tensor.retain_grad()
    output = steps[OUTPUTS[preset]]
    if output.requires_grad:
        output.backward()
    computed = {**leaves, **steps}
    values_out = {name: t.detach() for name, t in computed.items()}
    grads = {name: (t.grad if t.requires_grad else None) for name, t in computed.items()}
    return values_out, grads


def loss64(preset: str, values: dict[str, np.ndarray]) -> float:
    with torch.no_grad():
        return float(REFERENCES[preset](as_tensors(values))[OUTPUTS[preset]])


def finite_difference(
    preset: str, values: dict[str, np.ndarray], name: str, index: tuple[int, ...], h: float = 1e-6
) -> float:
    """d output / d values[name][index] by a central difference in float64 (no autograd)."""
    base = {
        k: np.asarray(v, dtype=np.float64) if np.asarray(v).dtype.kind == "f" else np.asarray(v)
        for k, v in values.items()
    }
    plus, minus = base[name].copy(), base[name].copy()
    plus[index] += h
    minus[index] -= h
    return (loss64(preset, {**base, name: plus}) - loss64(preset, {**base, name: minus})) / (2 * h)
