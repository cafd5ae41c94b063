"""The engine: presets in, snapshots out. Imports torch, never textual."""

from backprop_tui.engine.errors import BackpropError, ComputeError, EditError, PresetError
from backprop_tui.engine.graph import Graph
from backprop_tui.engine.preset import Preset, bundled_presets, load_preset, parse_preset, resolve_preset
from backprop_tui.engine.session import Session
from backprop_tui.engine.snapshot import AutogradFn, Node, Snapshot

__all__ = [
    "AutogradFn",
    "BackpropError",
    "ComputeError",
    "EditError",
    "Graph",
    "Node",
    "Preset",
    "PresetError",
    "Session",
    "Snapshot",
    "bundled_presets",
    "load_preset",
    "parse_preset",
    "resolve_preset",
]
