"""Shared helpers for the engine tests: bundled presets (loaded once), views of a snapshot."""

from __future__ import annotations

import functools
import json

import numpy as np

from backprop_tui.engine import Preset, Snapshot, bundled_presets, load_preset

BUNDLED = tuple(bundled_presets())


@functools.lru_cache(maxsize=None)
def bundled(name: str) -> Preset:
    return load_preset(bundled_presets()[name])


def initial_values(preset: Preset) -> dict[str, np.ndarray]:
    return {leaf.name: np.array(leaf.initial) for leaf in preset.leaves}


# A "view" is what a reader of the output sees: name -> (value, grad or None), plus extras.
View = dict[str, dict]


def view_of_snapshot(snapshot: Snapshot) -> View:
    return {
        n.name: {
            "value": np.asarray(n.value, dtype=np.float64),
            "grad": None if n.grad is None else np.asarray(n.grad, dtype=np.float64),
            "kind": n.kind,
            "grad_fn": n.grad_fn,
            "inputs": list(n.inputs),
            "requires_grad": n.requires_grad,
            "shape": list(n.shape),
        }
        for n in snapshot.nodes
    }


def view_of_json(text: str) -> tuple[View, dict]:
    data = json.loads(text)
    view = {
        n["name"]: {
            "value": np.asarray(n["value"], dtype=np.float64),
            "grad": None if n["grad"] is None else np.asarray(n["grad"], dtype=np.float64),
            "kind": n["kind"],
            "grad_fn": n["grad_fn"],
            "inputs": n["inputs"],
            "requires_grad": n["requires_grad"],
            "shape": n["shape"],
        }
        for n in data["nodes"]
    }
    return view, data
