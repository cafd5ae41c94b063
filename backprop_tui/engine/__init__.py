"""The engine: presets in, snapshots out. Imports torch, never textual.

Names are loaded on first use (PEP 562), so `backprop_tui.engine.numbers` and friends
can be imported without paying for `import torch`.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "BackpropError": "errors",
    "ComputeError": "errors",
    "EditError": "errors",
    "PresetError": "errors",
    "Graph": "graph",
    "Preset": "preset",
    "bundled_presets": "preset",
    "load_preset": "preset",
    "parse_preset": "preset",
    "resolve_preset": "preset",
    "Session": "session",
    "AutogradFn": "snapshot",
    "Node": "snapshot",
    "Snapshot": "snapshot",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'backprop_tui.engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"backprop_tui.engine.{module}"), name)
    globals()[name] = value
    return value
