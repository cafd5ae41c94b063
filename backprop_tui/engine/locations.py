"""Where backprop-tui keeps its files: the data directory (autosaves, settings).

Imports neither torch nor the rest of the engine, so the explorer can read its settings
before the first paint.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "backprop-tui"
ENV_DATA_DIR = "BACKPROP_TUI_DATA_DIR"


def data_dir() -> Path:
    """BACKPROP_TUI_DATA_DIR if set, else the platform's user data directory (platformdirs)."""
    override = os.environ.get(ENV_DATA_DIR)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
