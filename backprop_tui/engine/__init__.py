"""The engine: presets in, snapshots out. Imports torch, never textual.

Names are loaded on first use (PEP 562), so `backprop_tui.engine.numbers` and friends
can be imported without paying for `import torch`.
"""

from __future__ import annotations

import gc
import importlib
import sys
import threading

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
_NEEDS_TORCH = {"graph", "session"}  # modules that import torch when they load
_torch_lock = threading.Lock()


def import_torch() -> None:
    """`import torch` once, with the cyclic garbage collector paused, then `gc.freeze()`.

    torch leaves about 250,000 long-lived objects (its modules, functions and classes);
    with the explorer's own, a full collection walks some 400,000. Two ran during the
    import (0.1-0.27 s) and one soon after it (0.15-0.25 s, while the explorer's first
    screen waited for the values). Frozen, those objects are left out of every later
    collection: they live as long as the process anyway, and reference counting still
    frees whatever is dropped. The cost is the few cycles of garbage the import made,
    never collected (about 1 MB).
    """
    if "torch" in sys.modules:
        return  # imported already (or being imported by another thread, which waits for it)
    with _torch_lock:
        if "torch" in sys.modules:
            return
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            import torch  # noqa: F401
        finally:
            gc.freeze()
            if was_enabled:
                gc.enable()


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'backprop_tui.engine' has no attribute {name!r}")
    if module in _NEEDS_TORCH:
        import_torch()
    value = getattr(importlib.import_module(f"backprop_tui.engine.{module}"), name)
    globals()[name] = value
    return value
