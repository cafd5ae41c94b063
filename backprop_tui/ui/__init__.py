"""The Textual explorer. Imports textual, never torch at import time (the engine loads in a worker)."""

from backprop_tui.ui.app import BackpropApp, run_app

__all__ = ["BackpropApp", "run_app"]
