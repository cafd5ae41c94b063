"""What the explorer remembers between runs: the theme picked in the command palette.

Kept in settings.json in the data directory the autosaves use (BACKPROP_TUI_DATA_DIR, or
the platform's user data directory). A missing, unreadable or malformed file means the
default: a setting is never worth an error at start-up.
"""

from __future__ import annotations

import json

from backprop_tui.engine.errors import BackpropError
from backprop_tui.engine.files import atomic_write_text, read_limited
from backprop_tui.engine.locations import data_dir

SETTINGS_FILE = "settings.json"
MAX_BYTES = 10_000


def remembered_theme() -> str | None:
    try:
        stored = json.loads(read_limited(data_dir() / SETTINGS_FILE, MAX_BYTES))
    except (BackpropError, OSError, ValueError):
        return None
    theme = stored.get("theme") if isinstance(stored, dict) else None
    return theme if isinstance(theme, str) else None


def remember_theme(theme: str) -> str | None:
    """Store `theme`; the reason when the disk refuses (the theme still applies to this run)."""
    folder = data_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / SETTINGS_FILE, json.dumps({"theme": theme}) + "\n")
    except OSError as exc:
        return f"theme not remembered: {exc.strerror or exc}"
    return None
