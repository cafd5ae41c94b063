"""A hint for one node: the local derivative of each of its consumers, as the inspector
shows it (analysis.local), so the learner sees the factor backprop multiplies by."""

from __future__ import annotations

from backprop_tui.engine.analysis.live import State, run_live
from backprop_tui.engine.analysis.local import local_derivative


def hint(state: State, node: str) -> tuple[str, ...]:
    """One line per consumer of `node`: `through c: <its local derivative>`."""
    live = run_live(state)
    consumers = [c for c, inputs in live.graph.inputs.items() if node in inputs]
    lines = [f"through {c}: {local_derivative(live, c, node).text}" for c in consumers]
    if len(lines) > 1:
        lines.append(f"{node} has {len(lines)} consumers: add their parts")
    return tuple(lines)
