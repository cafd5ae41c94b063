"""Run a program in a pseudo-terminal and time what appears on its screen.

No terminal emulator is needed for what the benchmarks ask: escape sequences (cursor
moves, colours, modes) are dropped from the stream and the text that remains is
searched. Textual writes each span of a line as text between such sequences, so a
label it draws stays in one piece once they are dropped.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass, field

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), and two-byte ESC sequences.
_ESCAPES = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[P^_][^\x1b]*\x1b\\"
    rb"|\x1b[@-Z\\-_]|\x1b[()*+#][0-9A-Za-z]"
)


_LIVE: set[subprocess.Popen] = set()


def _kill_live() -> None:
    for proc in list(_LIVE):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _spawn(argv: list[str], slave: int, env: dict[str, str]) -> subprocess.Popen:
    """Start argv on the terminal; it is killed if the harness exits first (even on SIGTERM).

    The child has a session of its own and no controlling terminal, so nothing else would
    stop it: an explorer whose terminal is gone keeps running.
    """
    if not _LIVE and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        atexit.register(_kill_live)
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True, close_fds=True)
    _LIVE.add(proc)
    return proc


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM) so far; 0 once it has gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# An escape sequence cut off by the end of what has been read so far (a read can end
# inside one): its parameters ("38;5;247;48;5;1") are not text on the screen.
_CUT_ESCAPE = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*|[P^_][^\x1b]*|[()*+#])?\Z")


def visible_text(stream: bytes) -> str:
    """The printable text of a terminal stream, escape sequences removed (and one cut
    off at the end of the stream, which the next read completes)."""
    return _ESCAPES.sub(b"", _CUT_ESCAPE.sub(b"", stream)).decode("utf-8", "replace")


@dataclass
class Run:
    """What one run showed and when (seconds from the spawn), and its peak memory."""

    seen: dict[str, float] = field(default_factory=dict)  # marker -> first time it was on screen
    screens: dict[str, str] = field(default_factory=dict)  # marker -> all visible text up to then
    exit_time: float | None = None
    max_rss_mb: float | None = None
    returncode: int | None = None
    tail: str = ""  # the last visible text, for a failure message


def run_in_pty(argv: list[str], markers: list[str], size: tuple[int, int] = (100, 30),
               quit_keys: bytes = b"\x11", timeout: float = 60.0, env: dict[str, str] | None = None) -> Run:
    """Spawn argv in a cols x rows pseudo-terminal; time each marker; quit; collect rusage.

    After the last marker shows, `quit_keys` are typed (ctrl+q); a program that shows no
    markers (markers=[]) is simply waited for. Peak RSS is the child's VmHWM, read every
    10 ms (wait4's ru_maxrss would count the harness's own memory, copied by fork).
    """
    cols, rows = size
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    child_env = dict(os.environ if env is None else env)
    child_env.update(TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows))
    start = time.perf_counter()
    proc = _spawn(argv, slave, child_env)
    os.close(slave)
    run = Run()
    stream = b""
    pending = list(markers)
    quit_sent_at = None
    status = None
    try:
        while True:
            now = time.perf_counter()
            if now - start > timeout:
                raise TimeoutError(
                    f"{argv}: no {pending[0]!r} after {timeout:.0f} s; "
                    f"screen ends with: {visible_text(stream)[-300:]!r}"
                    if pending
                    else f"{argv}: did not exit after {timeout:.0f} s"
                )
            run.max_rss_mb = max(run.max_rss_mb or 0.0, peak_rss_mb(proc.pid))
            ready, _, _ = select.select([master], [], [], 0.01)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                if chunk:
                    stream += chunk
                    if pending:
                        text = visible_text(stream)
                        arrived = time.perf_counter() - start
                        while pending and pending[0] in text:
                            run.screens[pending[0]] = text
                            run.seen[pending.pop(0)] = arrived
                        if not pending and quit_keys:
                            os.write(master, quit_keys)
                            quit_sent_at = time.perf_counter()
                    continue
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                run.exit_time = time.perf_counter() - start
                break
            if quit_sent_at is not None and time.perf_counter() - quit_sent_at > 10:
                os.killpg(proc.pid, signal.SIGTERM)
    finally:
        os.close(master)
        if status is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    _LIVE.discard(proc)
    run.returncode = os.waitstatus_to_exitcode(status) if status is not None else None
    proc.returncode = run.returncode  # already reaped by wait4
    run.tail = visible_text(stream)[-300:]
    return run


class Session:
    """A program kept running in a pseudo-terminal, for timing keys one by one."""

    def __init__(self, argv: list[str], size: tuple[int, int] = (100, 30), env: dict[str, str] | None = None):
        cols, rows = size
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = dict(os.environ if env is None else env, TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows))
        self.start = time.perf_counter()
        self.proc = _spawn(argv, slave, env)
        os.close(slave)
        self.stream = b""

    def _read(self, wait: float) -> bytes:
        ready, _, _ = select.select([self.master], [], [], wait)
        if not ready:
            return b""
        try:
            return os.read(self.master, 65536)
        except OSError:
            return b""

    def wait_for(self, marker: str, timeout: float = 60.0) -> float:
        """Seconds from the spawn until `marker` is on screen."""
        while marker not in visible_text(self.stream):
            if time.perf_counter() - self.start > timeout:
                raise TimeoutError(f"no {marker!r}; screen ends with {visible_text(self.stream)[-300:]!r}")
            self.stream += self._read(0.01)
        return time.perf_counter() - self.start

    def settle(self, quiet: float) -> None:
        """Read until nothing has arrived for `quiet` seconds."""
        while True:
            chunk = self._read(quiet)
            if not chunk:
                return
            self.stream += chunk

    def key(self, keys: bytes, marker: str | None = None, quiet: float = 0.15,
            timeout: float = 20.0) -> tuple[float | None, float | None, bytes]:
        """Type `keys`. Return the seconds until `marker` was drawn (None without one), until
        the last output before `quiet` seconds of silence that follow it (None if nothing
        was drawn), and what was drawn."""
        sent = time.perf_counter()
        os.write(self.master, keys)
        drawn, shown, last = b"", None, None
        while time.perf_counter() - sent < timeout:
            waiting = marker is not None and shown is None
            chunk = self._read(0.01 if waiting else quiet)
            if not chunk:
                if waiting:
                    continue
                break
            drawn += chunk
            last = time.perf_counter() - sent
            if waiting and marker in visible_text(drawn):
                shown = last
        else:
            raise TimeoutError(f"{keys!r}: no {marker!r} after {timeout} s")
        self.stream += drawn
        return shown, last, drawn

    def close(self, quit_keys: tuple[bytes, ...] = (b"\x11",)) -> float:
        """Quit by typing `quit_keys` (ctrl+q; then d to discard unsaved edits, say), a
        quarter of a second apart; return the peak RSS in MB (VmHWM just before quitting)."""
        peak = peak_rss_mb(self.proc.pid)
        for i, keys in enumerate(quit_keys):
            if i:
                self.settle(0.25)
            os.write(self.master, keys)
        deadline = time.perf_counter() + 15
        while True:
            self._read(0.05)
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                os.close(self.master)
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                _LIVE.discard(self.proc)
                return peak
            if time.perf_counter() > deadline:
                os.killpg(self.proc.pid, signal.SIGKILL)
