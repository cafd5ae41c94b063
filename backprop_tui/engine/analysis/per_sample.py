"""Each sample's share of a parameter's gradient, and how the batch combines them.

A batch loss is usually the mean (mse, cross_entropy) or the sum of per-sample losses,
so its gradient is the mean or the sum of per-sample gradients. We run the real graph on
one sample at a time (every input and target sliced to row i, the parameters shared),
take each sample's gradient from torch, and find out from the numbers which of the two
the batch does: the shares (weight × sample gradient) then add up to the batch grad.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from backprop_tui.engine.analysis.live import AnalysisError, State, check_cost, leaf_values, private_graph, run_live
from backprop_tui.engine.errors import BackpropError
from backprop_tui.engine.numbers import fmt

_RTOL, _ATOL = 1e-4, 1e-7


@dataclass(frozen=True)
class LeafShares:
    name: str
    batch_grad: np.ndarray  # autograd's grad on the whole batch
    sample_grads: np.ndarray  # [batch, *shape]: the grad of sample i's own loss
    shares: np.ndarray | None  # weight × sample_grads; they add up to batch_grad (None if "other")


@dataclass(frozen=True)
class PerSample:
    batch_size: int
    batched: tuple[str, ...]  # the inputs and targets sliced row by row
    combine: str  # "mean", "sum" or "other"
    weight: float | None  # 1/batch for a mean, 1 for a sum
    sample_losses: tuple[float, ...]
    batch_loss: float
    leaves: dict[str, LeafShares]
    explanation: str


def batch_leaves(state: State) -> tuple[tuple[str, ...], int]:
    """The inputs/targets with a batch dimension (their first), and the batch size."""
    preset = state.preset
    batched = [
        leaf.name for leaf in preset.leaves if leaf.role in ("input", "target") and state.values[leaf.name].dim() >= 1
    ]
    sizes = {state.values[name].shape[0] for name in batched}
    if not batched:
        raise AnalysisError("no batch here: the inputs and targets are scalars")
    if len(sizes) != 1:
        detail = ", ".join(f"{n} {list(state.values[n].shape)}" for n in batched)
        raise AnalysisError(f"inputs and targets disagree on the batch size (first dimension): {detail}")
    size = sizes.pop()
    if size < 2:
        raise AnalysisError("the batch holds a single sample: there is nothing to break down")
    return tuple(batched), size


def per_sample(state: State, leaves: Iterable[str] | None = None) -> PerSample:
    """Per-sample gradients of the parameters (default: every non-batched leaf with a grad)."""
    batched, size = batch_leaves(state)
    names = [n for n in (leaves if leaves is not None else state.values) if n not in batched]
    names = [n for n in names if state.requires_grad.get(n)]
    held = 2 * size * sum(state.values[n].numel() for n in names)  # sample grads and their shares
    check_cost(state, f"the per-sample gradients ({size} samples × {', '.join(names)})", numbers=held, passes=2)
    live = run_live(state)
    batch_loss = float(live.trace.output.detach().reshape(-1)[0])
    batch_grads = {n: live.grad(n).double().numpy() for n in names if live.grad(n) is not None}

    graph = private_graph(state.preset)
    losses, grads = [], {n: [] for n in batch_grads}
    for i in range(size):
        values = leaf_values(state)
        for b in batched:
            values[b] = values[b][i : i + 1]  # keep the batch dimension: row i as a batch of one
        try:
            trace = graph.forward(values, dict(state.requires_grad))
            trace.output.backward()
        except (BackpropError, RuntimeError, ValueError, IndexError) as exc:
            raise AnalysisError(f"the graph does not run on one sample alone: {exc}") from None
        losses.append(float(trace.output.detach().reshape(-1)[0]))
        for n in grads:
            g = trace.tensors[n].grad
            grads[n].append(np.zeros(batch_grads[n].shape) if g is None else g.double().numpy().copy())

    stacked = {n: np.stack(g) for n, g in grads.items()}
    combine, weight = _combination(batch_loss, losses, batch_grads, stacked, size)
    result = {}
    for n, sample_grads in stacked.items():
        shares = None if weight is None else weight * sample_grads
        result[n] = LeafShares(
            n, _frozen(batch_grads[n]), _frozen(sample_grads), None if shares is None else _frozen(shares)
        )
    return PerSample(
        size,
        batched,
        combine,
        weight,
        tuple(losses),
        batch_loss,
        result,
        _explain(state, combine, size, losses, batch_loss),
    )


def _combination(batch_loss, losses, batch_grads, stacked, size) -> tuple[str, float | None]:
    """Which weight w makes Σ w·(sample loss) the batch loss and Σ w·(sample grad) its grad."""
    for combine, weight in (("mean", 1.0 / size), ("sum", 1.0)):
        loss_ok = np.isclose(weight * sum(losses), batch_loss, rtol=_RTOL, atol=_ATOL)
        grads_ok = all(
            np.allclose(
                weight * g.sum(axis=0),
                batch_grads[n],
                rtol=_RTOL,
                atol=_ATOL * max(1.0, float(np.abs(g).max(initial=0))),
            )
            for n, g in stacked.items()
        )
        if loss_ok and grads_ok:
            return combine, weight
    return "other", None


def _explain(state: State, combine: str, size: int, losses: list[float], batch_loss: float) -> str:
    out = state.preset.output
    parts = " + ".join(fmt(x) for x in losses[:8]) + (" + …" if len(losses) > 8 else "")
    if combine == "mean":
        return (
            f"{out} is the mean of the {size} per-sample losses ({parts}) / {size} = {fmt(batch_loss)}, "
            f"so each sample's share of a gradient is its own gradient / {size}"
        )
    if combine == "sum":
        return (
            f"{out} is the sum of the {size} per-sample losses ({parts} = {fmt(batch_loss)}), "
            "so each sample's share of a gradient is its whole own gradient"
        )
    return (
        f"{out} is neither the mean nor the sum of the per-sample losses: "
        "the samples interact, so there are no separate shares"
    )


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=np.float64)
    array.setflags(write=False)
    return array
