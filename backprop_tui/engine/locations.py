"""Where backprop-tui keeps its files: the data directory (autosaves, settings), and
whether the explorer autosaves (BACKPROP_TUI_AUTOSAVE=0, or no, off, false: it does not).

Imports neither torch nor the rest of the engine, so the explorer can read its settings
before the first paint.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Mapping

APP_NAME = "backprop-tui"
ENV_DATA_DIR = "BACKPROP_TUI_DATA_DIR"
ENV_AUTOSAVE = "BACKPROP_TUI_AUTOSAVE"


def data_dir() -> Path:
    """BACKPROP_TUI_DATA_DIR if set, else the platform's user data directory (platformdirs)."""
    override = os.environ.get(ENV_DATA_DIR)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def sessions_dir() -> Path:
    """Where the autosave's state files are."""
    return data_dir() / "sessions"


def autosave_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """False when BACKPROP_TUI_AUTOSAVE is 0, no, off or false (as `--no-autosave`)."""
    value = (os.environ if environ is None else environ).get(ENV_AUTOSAVE, "")
    return value.strip().lower() not in ("0", "no", "off", "false")


def new_instance() -> str:
    """A name for one explorer's own state files: its process id and a random part."""
    return f"{os.getpid()}-{secrets.token_hex(4)}"
