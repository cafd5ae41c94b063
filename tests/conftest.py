"""Suite-wide: no test writes into the real user data directory, and each starts with
Python's garbage-collection thresholds.

The explorer autosaves each session (engine.autosave) under the platform's data folder;
every test gets its own empty one instead, through BACKPROP_TUI_DATA_DIR.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("BACKPROP_TUI_DATA_DIR", str(tmp_path_factory.mktemp("data")))


@pytest.fixture(autouse=True)
def _gc_thresholds():
    """The explorer puts off automatic full collections (ui.collector); a test process
    that runs many explorers gets Python's thresholds back after each test."""
    import gc

    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)
