"""Tensors to read-only numpy arrays for snapshots, in one copy per dtype.

A snapshot needs a numpy copy of every value and gradient. Copied one by one, a tensor
costs a few microseconds of Python and torch dispatch, and a 500-step chain has a
thousand of them per edit. `Layout` copies a list of tensors into one new buffer per
dtype with a single torch call and hands out views into it; it remembers where each
tensor goes, so an edit that produces tensors of the same shapes reuses the plan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch._utils import _flatten_dense_tensors  # what DistributedDataParallel packs its buckets with

STACK_FROM = 32  # from this many scalars on, one torch.stack beats flattening them with the rest


@dataclass(frozen=True)
class _Group:
    """Tensors of one dtype that go into one buffer: where each one's elements lie."""

    dtype: torch.dtype
    stacked: bool  # 0-d tensors, copied with torch.stack
    indices: tuple[int, ...]  # positions in the tensor list
    slices: tuple[tuple[int, int, tuple[int, ...]], ...]  # (start, stop, shape) in the buffer
    size: int


class Layout:
    """Where each of a list of tensors goes in one buffer per dtype."""

    def __init__(self, tensors: list[torch.Tensor]):
        many = len(tensors) >= STACK_FROM and sum(1 for t in tensors if t.dim() == 0) >= STACK_FROM
        by_key: dict[tuple[torch.dtype, bool], list[int]] = {}
        for i, tensor in enumerate(tensors):
            by_key.setdefault((tensor.dtype, many and tensor.dim() == 0), []).append(i)
        groups = []
        for (dtype, stacked), indices in by_key.items():
            slices, offset = [], 0
            for i in indices:
                size = tensors[i].numel()
                slices.append((offset, offset + size, tuple(tensors[i].shape)))
                offset += size
            groups.append(_Group(dtype, stacked, tuple(indices), tuple(slices), offset))
        self.count = len(tensors)
        self.groups = tuple(groups)

    def copy(self, tensors: list[torch.Tensor]) -> tuple[list[np.ndarray], bool] | None:
        """Read-only copies of `tensors` and whether all are finite; None if they do not fit."""
        if len(tensors) != self.count:
            return None
        arrays: list[np.ndarray] = [None] * self.count  # type: ignore[list-item]
        finite = True
        for group in self.groups:
            parts = [tensors[i] for i in group.indices]
            with torch.no_grad():
                flat = torch.stack(parts) if group.stacked else _flat_copy(parts)
            if flat.dtype != group.dtype or flat.numel() != group.size:
                return None
            buffer = flat.numpy()
            buffer.setflags(write=False)  # first: views made from it are read-only too
            for i, (start, stop, shape) in zip(group.indices, group.slices):
                arrays[i] = buffer[start:stop].reshape(shape)
            if group.dtype.is_floating_point and not np.isfinite(buffer).all():
                finite = False
        return arrays, finite


def frozen_arrays(tensors: list[torch.Tensor]) -> tuple[list[np.ndarray], bool]:
    """Read-only numpy copies of `tensors`, and whether all of them are finite."""
    result = Layout(tensors).copy(tensors)
    assert result is not None
    return result


def _flat_copy(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The elements of all `tensors`, in order, in one new 1-d tensor."""
    if len(tensors) == 1:  # _flatten_dense_tensors would return a view, not a copy
        return tensors[0].reshape(-1).clone()
    return _flatten_dense_tensors(tensors)  # one C++ call; torch.cat needs a reshape per tensor first


def is_finite(array: np.ndarray) -> bool:
    return array.dtype.kind != "f" or bool(np.isfinite(array).all())


def nonfinite_warnings(values: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> list[str]:
    """One line per node whose value (or else gradient) holds nan or inf, in node order."""
    warnings = []
    for name, value in values.items():
        grad = grads.get(name)
        if not is_finite(value):
            warnings.append(f"{name} holds nan or inf")
        elif grad is not None and not is_finite(grad):
            warnings.append(f"the gradient of {name} holds nan or inf")
    return warnings
