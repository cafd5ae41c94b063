"""Helpers of the robustness suites: small presets, and a session's state compared whole."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from backprop_tui.engine import Preset, Session, bundled_presets, load_preset, parse_preset


@functools.lru_cache(maxsize=None)
def bundled(name: str) -> Preset:
    return load_preset(bundled_presets()[name])


@functools.lru_cache(maxsize=None)
def preset_from(text: str) -> Preset:
    return parse_preset(text, source="<text>", default_name="test")


def one_step_preset(leaves: dict[str, str], expr: str, *, output_expr: str | None = None) -> Preset:
    """A preset with parameter leaves given as TOML values, a step E = expr and J = E or sum(E)."""
    parts = ['name = "test"', 'output = "J"', ""]
    for name, value in leaves.items():
        parts += [f"[tensors.{name}]", 'role = "parameter"', f"value = {value}", ""]
    parts += ["[[steps]]", 'name = "E"', f'expr = "{expr}"', ""]
    parts += ["[[steps]]", 'name = "J"', f'expr = "{output_expr or "E"}"', ""]
    return preset_from("\n".join(parts))


# A preset whose torch ops can fail for some values (bce needs probabilities in [0, 1],
# cross_entropy needs class indices in range): for edits that must be refused.
FRAGILE_PRESET = """
name = "fragile"
output = "J"

[tensors.p]
role = "parameter"
value = [0.25, 0.75]

[tensors.y]
role = "target"
value = [0.0, 1.0]

[tensors.logits]
role = "parameter"
value = [[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]]

[tensors.classes]
role = "target"
dtype = "int"
value = [0, 2]

[[steps]]
name = "B"
expr = "bce(p, y)"

[[steps]]
name = "C"
expr = "cross_entropy(logits, classes)"

[[steps]]
name = "J"
expr = "B + C"
"""


@dataclass
class State:
    """Everything an edit could change, copied (values) or by identity (history, snapshot)."""

    values: dict[str, torch.Tensor]
    requires_grad: dict[str, bool]
    undo: list
    redo: list
    snapshot: object
    losses: list[float]
    steps_taken: int
    learning_rate: float


def state_of(session: Session) -> State:
    return State(
        values={k: v.clone() for k, v in session.values.items()},
        requires_grad=dict(session.requires_grad),
        undo=list(session.undo_stack),
        redo=list(session.redo_stack),
        snapshot=session.snapshot,
        losses=list(session.sgd_losses),
        steps_taken=session.steps_taken,
        learning_rate=session.learning_rate,
    )


def unchanged(session: Session, before: State) -> bool:
    """True when nothing in the session differs from `before` (the snapshot is the same object)."""
    return (
        session.values.keys() == before.values.keys()
        and all(
            session.values[k].dtype == v.dtype and torch.equal(session.values[k], v) for k, v in before.values.items()
        )
        and session.requires_grad == before.requires_grad
        and len(session.undo_stack) == len(before.undo)
        and all(a is b for a, b in zip(session.undo_stack, before.undo))
        and len(session.redo_stack) == len(before.redo)
        and all(a is b for a, b in zip(session.redo_stack, before.redo))
        and session.snapshot is before.snapshot
        and session.sgd_losses == before.losses
        and session.steps_taken == before.steps_taken
        and session.learning_rate == before.learning_rate
    )
