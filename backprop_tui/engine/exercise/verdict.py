"""makemore's `cmp`, for one answer: exact, approximate, maxdiff, and whether the shape fits."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

EXACT, APPROXIMATE, WRONG, ERROR, TODO = "exact", "approximate", "wrong", "error", "to do"
ACCEPTED = (EXACT, APPROXIMATE)


@dataclass(frozen=True)
class Verdict:
    """What a check found. `status` is exact, approximate, wrong, or error (not computed)."""

    node: str
    text: str
    status: str
    expected_shape: tuple[int, ...]
    shape: tuple[int, ...] | None = None  # the answer's shape (None when it did not compute)
    exact: bool = False
    approximate: bool = False
    maxdiff: float | None = None  # None when the shapes differ
    grads_used: tuple[str, ...] = ()
    diagnosis: str = ""  # why it is wrong, when that can be told; the error for status error
    label: str = ""  # what the line is called: d + node, or an exercise's name

    @property
    def key(self) -> str:
        """What progress keeps it under: the exercise's name, or the node's."""
        return self.label or self.node

    @property
    def accepted(self) -> bool:
        return self.status in ACCEPTED

    @property
    def shape_ok(self) -> bool:
        return self.shape == self.expected_shape

    def line(self) -> str:
        """One line as makemore's cmp prints it, then the diagnosis."""
        name = self.label or f"d{self.node}"
        if self.status == ERROR:
            return f"{name:15s} | error: {self.diagnosis}"
        diff = "-" if self.maxdiff is None else repr(self.maxdiff)
        text = f"{name:15s} | exact: {str(self.exact):5s} | approximate: {str(self.approximate):5s} | maxdiff: {diff}"
        if not self.shape_ok and not self.diagnosis:
            text += f" | {list(self.shape or ())} given, {list(self.expected_shape)} expected"
        return text + (f" | {self.diagnosis}" if self.diagnosis else "")

    def to_json(self) -> dict[str, Any]:
        maxdiff = self.maxdiff
        return {
            "name": self.label or f"d{self.node}",
            "node": self.node,
            "answer": self.text,
            "status": self.status,
            "exact": self.exact,
            "approximate": self.approximate,
            "maxdiff": maxdiff if maxdiff is None or math.isfinite(maxdiff) else str(maxdiff),
            "shape_ok": self.shape_ok,
            "shape": None if self.shape is None else list(self.shape),
            "expected_shape": list(self.expected_shape),
            "grads_used": [f"d{n}" for n in self.grads_used],
            "diagnosis": self.diagnosis,
        }


@dataclass(frozen=True)
class Comparison:
    exact: bool
    approximate: bool
    maxdiff: float | None
    shape_ok: bool = field(default=True)


def compare(given: torch.Tensor, expected: torch.Tensor) -> Comparison:
    """cmp: torch.all(dt == t.grad), torch.allclose(dt, t.grad), (dt - t.grad).abs().max()."""
    if tuple(given.shape) != tuple(expected.shape):
        return Comparison(False, False, None, shape_ok=False)
    exact = bool(torch.all(given == expected).item())
    approximate = bool(torch.allclose(given, expected))
    maxdiff = float((given - expected).abs().max().item()) if given.numel() else 0.0
    return Comparison(exact, approximate, maxdiff)
