"""The chain rule and local derivatives of a node, as the inspector's first lines say them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backprop_tui.engine.analysis.live import State


@dataclass(frozen=True)
class Explanation:
    """What the engine's analyses say about a node (engine.analysis.local)."""

    chain_rule: str  # e.g. ∂f/∂h = ∂f/∂g · ∂g/∂h = 18 · 12 = 216, or why there is no grad
    local: tuple[str, ...] = ()  # one line per input of a step: d/dh (h³ + 1) = 3h² = 12


def explain(state: "State", name: str) -> Explanation:
    """The engine's chain rule and local derivatives for a node; its message if it has none.

    The numbers come from torch in engine.analysis.local (on a private graph), so the UI
    does no math of its own.
    """
    from backprop_tui.engine import BackpropError
    from backprop_tui.engine.analysis.local import chain_rule, local_derivatives

    try:
        rule = chain_rule(state, name).text
    except BackpropError as exc:
        return Explanation(str(exc))
    except Exception as exc:  # noqa: BLE001 - an analysis bug must not take the explorer down
        return Explanation(f"chain rule unavailable ({type(exc).__name__}: {exc})")
    try:
        local = tuple(d.text for d in local_derivatives(state, name))
    except BackpropError as exc:
        local = (str(exc),)
    except Exception as exc:  # noqa: BLE001
        local = (f"local derivatives unavailable ({type(exc).__name__}: {exc})",)
    return Explanation(rule, local)
