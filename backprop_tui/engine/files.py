"""Files in and out: the one reader, the checks on a path typed for writing, the atomic writer.

Reading: `read_limited` is how every file is read (presets, autosaves, the source of a
save). It refuses anything but a regular file before reading a byte (a FIFO would block,
/dev/zero never ends) and reads at most `limit` + 1 bytes, whatever the file claims.

Writing: `write_target` turns what the user typed into the path to write, or a one-line
FileRefused: a name that cannot be expanded (`~nosuchuser/x`), `~` alone, a folder, a
missing folder (never created), a name too long, a symbolic link, a device or a FIFO.
`atomic_write_text` writes a temporary file beside the target (named
`.NAME.PID-RANDOM.bptmp`), flushes, fsyncs and renames it over the target: a crash leaves
the old file, and `remove_stale_temporaries` removes what a killed writer left. A
replaced file keeps its permission bits; a new one gets the usual 0666 less the umask.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
from pathlib import Path

from backprop_tui.engine.errors import BackpropError

TEMP_SUFFIX = ".bptmp"
_TEMP_NAME = re.compile(r"^\..*\.(\d+)-[A-Za-z0-9_]+" + re.escape(TEMP_SUFFIX) + r"$", re.S)
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))


class FileRefused(BackpropError):
    """A file that is not read or not written; the message is one line, without the path."""


def kind_of(mode: int) -> str:
    """What a file of this st_mode is, in words ("a regular file", "a FIFO (named pipe)", ...)."""
    return next((name for test, name in _KINDS if test(mode)), "a regular file" if stat.S_ISREG(mode) else "not a file")


def read_limited(path: str | Path, limit: int) -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them; FileRefused otherwise.

    Anything else (a FIFO, a device, a folder, a symlink to one) is refused before it is
    read; the file is opened without blocking and checked again on the open descriptor,
    and no more than `limit` + 1 bytes are read even if it grows meanwhile.
    """
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise FileRefused(f"not a regular file but {kind_of(mode)}")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise FileRefused(f"cannot read file: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # swapped since the stat above
            raise FileRefused(f"not a regular file but {kind_of(info.st_mode)}")
        if info.st_size > limit:
            raise FileRefused(f"file is {info.st_size:,} bytes; the limit is {limit:,}")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise FileRefused(f"file is more than {limit:,} bytes; the limit is {limit:,}")
        return b"".join(chunks)
    except OSError as exc:
        raise FileRefused(f"cannot read file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def expand(text: str | Path, base: Path | None = None) -> Path:
    """The absolute path `text` names (`~` expanded, relative to `base` or the current folder)."""
    raw = str(text)
    if "\0" in raw:
        raise FileRefused("a path holds no NUL character")
    try:
        path = Path(raw).expanduser()
    except RuntimeError:  # ~nosuchuser
        user = raw.split("/", 1)[0]
        raise FileRefused(f"{user}: no such user, so the path cannot be expanded") from None
    if path.is_absolute():
        return path
    if base is None:
        try:
            base = Path.cwd()
        except OSError:
            raise FileRefused("the current folder no longer exists; type an absolute path") from None
    return base / path


def write_target(text: str | Path, base: Path | None = None) -> Path:
    """The path to write for `text`, checked: FileRefused (one line) if it cannot be written.

    The folder must exist (it is never created); the path may not name a folder, a
    symbolic link, a device, a FIFO or a socket; an existing regular file is returned
    as is (the caller asks before replacing it).
    """
    raw = str(text).strip()
    if raw in ("", "~") or raw.endswith(("/", os.sep)) or Path(raw).name in ("", ".", ".."):
        raise FileRefused("type a file name, not a folder")
    path = expand(raw, base)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise FileRefused(_os_reason(exc)) from None
    except ValueError:  # a character no file name can hold
        raise FileRefused("the path holds characters a file name cannot") from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        what = kind_of(info.st_mode)
        if stat.S_ISLNK(info.st_mode):
            raise FileRefused("is a symbolic link; type the path of the file it points to")
        raise FileRefused(f"is {what}; only a regular file is replaced")
    try:
        parent = os.stat(path.parent)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise FileRefused(f"the folder {path.parent} does not exist") from None
        raise FileRefused(_os_reason(exc)) from None
    if not stat.S_ISDIR(parent.st_mode):
        raise FileRefused(f"{path.parent} is not a folder")
    return path


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ENAMETOOLONG:
        return "the file name is too long"
    return exc.strerror or str(exc)


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def atomic_write_text(path: str | Path, text: str, *, private: bool = False) -> None:
    """Write `text` to a temporary file beside `path`, flush, fsync, then rename over it.

    The folder must exist, and `path` be a regular file or nothing (OSError otherwise, or
    when the disk refuses). The file gets the permission bits of the file it replaces, or
    0666 less the umask when new (0600 when `private`).
    """
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        mode = 0o600 if private else 0o666 & ~_umask()
    else:
        if not stat.S_ISREG(info.st_mode):  # checked before, but it may have changed since
            raise OSError(errno.EEXIST, f"it is {kind_of(info.st_mode)}; only a regular file is replaced")
        mode = stat.S_IMODE(info.st_mode)
    remove_stale_temporaries(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:80]}.{os.getpid()}-", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove our temporary files in `folder` whose writer is no longer running; the removed."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if not match or not entry.is_file(follow_symlinks=False) or is_running(int(match.group(1))):
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def is_running(pid: int) -> bool:
    """True when a process with this id runs (this one included)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0  # someone else's process
    return True
