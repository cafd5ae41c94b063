"""The chain rule and local derivatives of a node, as the inspector's first lines say them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    import numpy as np

    from backprop_tui.engine.analysis.live import State


@dataclass(frozen=True)
class Explanation:
    """What the engine's analyses say about a node (engine.analysis.local)."""

    chain_rule: str  # e.g. ∂f/∂h = ∂f/∂g · ∂g/∂h = 18 · 12 = 216, or why there is no grad
    local: tuple[str, ...] = ()  # one line per input of a step: d/dh (h³ + 1) = 3h² = 12
    module: str = ""  # a module parameter's torch class: "nn.BatchNorm1d"
    module_lines: tuple[str, ...] = ()  # its buffers (running statistics), not differentiated
    loaded_requires_grad: bool | None = None  # a leaf's requires_grad as the preset sets it (its note's)
    # backward through matrix products, with shapes: ∂J/∂W = (∂J/∂Z)ᵀ · X
    matrix_forms: tuple[str, ...] = ()  # the node's grad from the products that consume it
    backward_forms: tuple[str, ...] = ()  # a product step's backward to its inputs
    # beside each `local` line: a pointwise step's local derivative at each element (or None)
    local_values: "tuple[np.ndarray | None, ...]" = ()


def explain(state: "State", name: str, buffers: "Mapping[str, np.ndarray] | None" = None) -> Explanation:
    """The engine's chain rule and local derivatives for a node; its message if it has none.

    The numbers come from torch in engine.analysis.local (on a private graph), so the UI
    does no math of its own. `buffers`: the snapshot's module buffers (BatchNorm's running
    statistics), shown with that module's parameters.
    """
    from backprop_tui.engine import BackpropError
    from backprop_tui.engine.analysis.local import chain_rule, local_derivatives
    from backprop_tui.engine.analysis.matrix_form import matrix_forms

    module, module_lines = _module(state, name, buffers or {})
    loaded = next((leaf.requires_grad for leaf in state.preset.leaves if leaf.name == name), None)
    try:
        chain = chain_rule(state, name)
        # a tensor's grad is drawn as an aligned matrix just above, not again as a nested list
        rule = chain.text if chain.head == chain.text else f"{chain.head}: the grad shown above"
    except BackpropError as exc:
        return Explanation(str(exc), module=module, module_lines=module_lines, loaded_requires_grad=loaded)
    except Exception as exc:  # noqa: BLE001 - an analysis bug must not take the explorer down
        unavailable = f"chain rule unavailable ({type(exc).__name__}: {exc})"
        return Explanation(unavailable, module=module, module_lines=module_lines, loaded_requires_grad=loaded)
    values: tuple = ()
    try:
        derivatives = local_derivatives(state, name)
        local, values = tuple(d.text for d in derivatives), tuple(d.elementwise for d in derivatives)
    except BackpropError as exc:
        local = (str(exc),)
    except Exception as exc:  # noqa: BLE001
        local = (f"local derivatives unavailable ({type(exc).__name__}: {exc})",)
    try:
        into, of = matrix_forms(state, name)
        forms, backward = tuple(f.text for f in into), tuple(f.text for f in of)
    except Exception as exc:  # noqa: BLE001
        forms, backward = (f"unavailable ({type(exc).__name__}: {exc})",), ()
    return Explanation(rule, local, module, module_lines, loaded, forms, backward, values)


def _module(state: "State", name: str, buffers: "Mapping[str, np.ndarray]") -> tuple[str, tuple[str, ...]]:
    """For a module's parameter: its torch class, and its buffers' values after this pass."""
    from backprop_tui.engine.format import format_array

    spec = next((m for m in state.preset.modules if name in m.parameter_names), None)
    if spec is None:
        return "", ()
    lines = tuple(
        f"{key} = {format_array(buffers[key])}  (a buffer this pass updated: not a leaf, not differentiated)"
        for key in (f"{spec.name}.{b}" for b in spec.kind.buffers)
        if key in buffers
    )
    return f"nn.{spec.type}", lines
