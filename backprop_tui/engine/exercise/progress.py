"""How far a learner is: per node, the last answer, its status and the hints asked for.

Plain immutable data (JSON-ready), so the Session holds it, undo restores it and autosave
writes it. The tensors an answer stands for are never stored: they are computed again
from the answers' text (Exercise.recheck), on the values of the moment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Iterable

from backprop_tui.engine.exercise.verdict import ACCEPTED, APPROXIMATE, ERROR, EXACT, TODO, WRONG, Verdict

STATUSES = (TODO, WRONG, ERROR, APPROXIMATE, EXACT)
_FIELDS = ("answer", "status", "hints", "grads_used", "maxdiff")


@dataclass(frozen=True)
class NodeProgress:
    answer: str = ""
    status: str = TODO
    hints: int = 0
    grads_used: tuple[str, ...] = ()
    maxdiff: float | None = None

    @property
    def accepted(self) -> bool:
        return self.status in ACCEPTED


@dataclass(frozen=True)
class Progress:
    """Each node's progress, by name; a node not listed is still to do."""

    entries: tuple[tuple[str, NodeProgress], ...] = ()

    def get(self, node: str) -> NodeProgress:
        return dict(self.entries).get(node, NodeProgress())

    def _with(self, node: str, entry: NodeProgress) -> "Progress":
        items = dict(self.entries)
        items[node] = entry
        return Progress(tuple(items.items()))

    def with_verdict(self, verdict: Verdict) -> "Progress":
        old = self.get(verdict.key)
        return self._with(
            verdict.key,
            NodeProgress(verdict.text, verdict.status, old.hints, verdict.grads_used, verdict.maxdiff),
        )

    def with_hint(self, node: str) -> "Progress":
        old = self.get(node)
        return self._with(node, replace(old, hints=old.hints + 1))

    def done(self, order: Iterable[str]) -> int:
        return sum(1 for node in order if self.get(node).accepted)

    def next_to_do(self, order: Iterable[str], after: str | None = None) -> str | None:
        """The first node not yet accepted, looking after `after` first, then from the top."""
        order = tuple(order)
        start = order.index(after) + 1 if after in order else 0
        for node in order[start:] + order[:start]:
            if not self.get(node).accepted:
                return node
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            node: {
                "answer": p.answer,
                "status": p.status,
                "hints": p.hints,
                "grads_used": list(p.grads_used),
                "maxdiff": p.maxdiff if p.maxdiff is None or math.isfinite(p.maxdiff) else None,
            }
            for node, p in self.entries
        }

    @classmethod
    def from_json(cls, doc: Any, nodes: Iterable[str]) -> "Progress":
        """Read back what to_json wrote; ValueError with the reason for anything else."""
        known = set(nodes)
        if not isinstance(doc, dict):
            raise ValueError("exercise progress must be an object")
        entries = []
        for node, item in doc.items():
            if node not in known:
                raise ValueError(f"exercise progress names {node!r}, which has no gradient to derive")
            if not isinstance(item, dict) or set(item) != set(_FIELDS):
                raise ValueError(f"exercise progress of {node!r} is not answer, status, hints, grads_used, maxdiff")
            answer, status, hints, used, maxdiff = (item[k] for k in _FIELDS)
            if not isinstance(answer, str) or status not in STATUSES:
                raise ValueError(f"exercise progress of {node!r}: bad answer or status")
            if isinstance(hints, bool) or not isinstance(hints, int) or hints < 0:
                raise ValueError(f"exercise progress of {node!r}: hints must be a count")
            if not isinstance(used, list) or not all(isinstance(u, str) and u in known for u in used):
                raise ValueError(f"exercise progress of {node!r}: grads_used must name nodes")
            if maxdiff is not None and (isinstance(maxdiff, bool) or not isinstance(maxdiff, (int, float))):
                raise ValueError(f"exercise progress of {node!r}: maxdiff must be a number")
            maxdiff = None if maxdiff is None else float(maxdiff)
            entries.append((node, NodeProgress(answer, status, hints, tuple(used), maxdiff)))
        return cls(tuple(entries))


__all__ = ["APPROXIMATE", "EXACT", "NodeProgress", "Progress", "STATUSES", "TODO"]
