"""Suite-wide: no test writes into the real user data directory.

The explorer autosaves each session (engine.autosave) under the platform's data folder;
every test gets its own empty one instead, through BACKPROP_TUI_DATA_DIR.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("BACKPROP_TUI_DATA_DIR", str(tmp_path_factory.mktemp("data")))
