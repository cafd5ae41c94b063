"""What a served session may do with the server's files: the one place the app asks.

A served session is driven by whoever opened the page, so a path typed there must never
reach the server's files unless the teacher named a directory (`serve --dir DIR`); then
every path stays inside it: no absolute paths, no `..`, no symlink that leads out.
Autosave (which writes into the server's data directory) is off in every served session.
The serve command tells its child processes through the environment (SERVED_ENV, DIR_ENV).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Mapping

SERVED_ENV = "BACKPROP_TUI_SERVED"
DIR_ENV = "BACKPROP_TUI_SERVE_DIR"


class PathRefused(Exception):
    """A path the policy does not allow; the message is one line for the user."""


@dataclass(frozen=True)
class FilePolicy:
    served: bool = False
    directory: Path | None = None  # served sessions may use files inside it, and only there

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> "FilePolicy":
        environ = os.environ if environ is None else environ
        if environ.get(SERVED_ENV) != "1":
            return cls()
        directory = environ.get(DIR_ENV) or None
        return cls(True, Path(directory).resolve() if directory else None)

    def environ(self) -> dict[str, str]:
        """The variables that make a child process run under this policy."""
        if not self.served:
            return {}
        return {SERVED_ENV: "1", DIR_ENV: str(self.directory or "")}

    @property
    def files_allowed(self) -> bool:
        """Opening, saving and exporting by path."""
        return not self.served or self.directory is not None

    @property
    def autosave(self) -> bool:
        return not self.served

    def refusal(self, what: str) -> str:
        return f"{what} is off in a served session (the server's files are not the browser's)"

    def resolve(self, text: str, base: Path | None = None) -> Path:
        """The path `text` names, or PathRefused: local sessions take any path, relative to
        `base` (the current directory when None); served ones only a relative path inside the directory."""
        text = text.strip()
        if not self.served:
            from backprop_tui.engine.files import FileRefused, expand

            try:
                return expand(text, base)
            except FileRefused as exc:
                raise PathRefused(f"{text}: {exc}") from None
        if self.directory is None:
            raise PathRefused(self.refusal("using files"))
        if not text or "\0" in text or "\n" in text:
            raise PathRefused("type a file name inside the served directory")
        pure = PurePath(text)
        if pure.is_absolute() or text.startswith(("~", "/", "\\")):
            raise PathRefused(f"{text}: only names inside the served directory, not absolute paths")
        if ".." in pure.parts:
            raise PathRefused(f"{text}: '..' leaves the served directory")
        root = self.directory.resolve()
        target = (root / pure).resolve()  # follows symlinks: one that leads out is caught below
        if target != root and root not in target.parents:
            raise PathRefused(f"{text}: leads out of the served directory")
        return target

    def checked(self, text: str) -> str:
        """What to open or write for `text`: unchanged in a local session (relative paths stay
        relative), the confined absolute path in a served one; PathRefused if not allowed."""
        return text if not self.served else str(self.resolve(text))

    def shown(self, path: Path) -> str:
        """A path as the session may see it: relative to the served directory."""
        if self.served and self.directory is not None:
            try:
                return str(path.relative_to(self.directory.resolve()))
            except ValueError:
                return path.name
        return str(path)
