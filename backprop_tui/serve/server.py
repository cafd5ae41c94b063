"""`backprop-tui serve`: the explorer in web browsers through textual-serve, one process a tab.

textual-serve's Server starts the app command for every browser tab (a websocket) and
relays its terminal to xterm.js. ClassServer adds what a class needs: a cap on the tabs
served at once (the next page says the class is full), an end to a session left idle, and
every session ended when the server stops. The served-mode file policy reaches each
explorer through the environment (serve.policy).
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Callable

from aiohttp import WSMsgType, web
from textual_serve.app_service import AppService
from textual_serve.server import Server

from backprop_tui.serve.policy import FilePolicy

DEFAULT_MAX_SESSIONS = 32
IDLE_SECONDS = 3600  # a session with no key for this long ends
STOP_SECONDS = 10  # how long a session may take to quit when the server stops

FULL_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>backprop-tui: the class is full</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">
<h1>The class is full</h1>
<p>This backprop-tui server already runs {count} explorer(s), its limit.
Close another tab, or ask your teacher to start the server with a higher
<code>--max-sessions</code>, then reload this page.</p>
</body></html>
"""


class IdleClock:
    """When a session last had a key; how long until it counts as idle."""

    def __init__(self, limit: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self.last = clock()

    def touch(self) -> None:
        self.last = self.clock()

    def remaining(self) -> float:
        return self.limit - (self.clock() - self.last)


def app_command(spec: str, directory: Path | None = None) -> str:
    """The shell command textual-serve runs for every tab: this Python, this package, the preset;
    in --dir when given, so that relative names land there."""
    command = f"{shlex.quote(sys.executable)} -m backprop_tui {shlex.quote(spec)}"
    return command if directory is None else f"cd {shlex.quote(str(directory))} && {command}"


class ClassServer(Server):
    def __init__(self, command: str, *, host: str, port: int, public_url: str | None,
                 max_sessions: int = DEFAULT_MAX_SESSIONS, idle_seconds: float = IDLE_SECONDS,
                 title: str = "backprop-tui") -> None:
        super().__init__(command, host=host, port=port, title=title, public_url=public_url)
        self.max_sessions = max_sessions
        self.idle_seconds = idle_seconds
        self.sessions: dict[AppService, web.WebSocketResponse] = {}

    @property
    def full(self) -> bool:
        return len(self.sessions) >= self.max_sessions

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        if self.full:
            return web.Response(status=503, text=FULL_PAGE.format(count=len(self.sessions)),
                                content_type="text/html")
        return await super().handle_index(request)

    async def on_startup(self, app: web.Application) -> None:
        print(f"backprop-tui serve: open {self.public_url} in a browser "
              f"(at most {self.max_sessions} tabs at once; ctrl+c stops the server)", flush=True)

    async def on_shutdown(self, app: web.Application) -> None:
        """ctrl+c: every explorer quits, every browser is told."""
        sessions = list(self.sessions.items())
        for _, websocket in sessions:
            await _say(websocket, "The server stopped.")
        await asyncio.gather(*(_stop(service) for service, _ in sessions), return_exceptions=True)
        await asyncio.gather(*(websocket.close() for _, websocket in sessions), return_exceptions=True)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One browser tab: an explorer process, its keys in, its screen out, until either ends."""
        websocket = web.WebSocketResponse(heartbeat=15)
        await websocket.prepare(request)
        if self.full:
            await _say(websocket, f"The class is full ({self.max_sessions} explorers). Reload later.")
            await websocket.close()
            return websocket
        width = _int(request.query.get("width"), 80)
        height = _int(request.query.get("height"), 24)
        service = AppService(self.command, write_bytes=websocket.send_bytes, write_str=websocket.send_str,
                             close=websocket.close, download_manager=self.download_manager, debug=self.debug)
        self.sessions[service] = websocket
        idle = IdleClock(self.idle_seconds)
        watchdog = asyncio.create_task(self._end_when_idle(websocket, idle))
        try:
            await service.start(width, height)
            await self._relay(websocket, service, idle)
        except asyncio.CancelledError:
            pass
        finally:
            watchdog.cancel()
            self.sessions.pop(service, None)
            await _stop(service)
            await websocket.close()
        return websocket

    async def _relay(self, websocket: web.WebSocketResponse, service: AppService, idle: IdleClock) -> None:
        """The browser's messages to the app (textual-serve's protocol); a key resets the idle clock."""
        async for message in websocket:
            if message.type != WSMsgType.TEXT:
                continue
            envelope = message.json()
            if not isinstance(envelope, list) or not envelope:
                continue
            kind = envelope[0]
            data = envelope[1] if len(envelope) > 1 else None
            if kind == "stdin" and isinstance(data, str):
                idle.touch()
                await service.send_bytes(data.encode("utf-8"))
            elif kind == "resize" and isinstance(data, dict):
                await service.set_terminal_size(_int(data.get("width"), 80), _int(data.get("height"), 24))
            elif kind == "ping":
                await websocket.send_json(["pong", data])
            elif kind == "blur":
                await service.blur()
            elif kind == "focus":
                await service.focus()

    async def _end_when_idle(self, websocket: web.WebSocketResponse, idle: IdleClock) -> None:
        while (wait := idle.remaining()) > 0:
            await asyncio.sleep(min(wait, 60))
        minutes = round(self.idle_seconds / 60)
        await _say(websocket, f"This session ended after {minutes} minute(s) without a key. Reload to start again.")
        await websocket.close()


async def _say(websocket: web.WebSocketResponse, text: str) -> None:
    """A line on the browser's terminal, below whatever the explorer drew."""
    try:
        await websocket.send_bytes(f"\x1b[0m\r\n\r\n  {text}\r\n".encode("utf-8"))
    except Exception:  # noqa: BLE001 - the browser may be gone already
        pass


async def _stop(service: AppService) -> None:
    try:
        await asyncio.wait_for(service.stop(), STOP_SECONDS)
    except Exception:  # noqa: BLE001 - a session that will not quit must not keep the server up
        pass


def _int(value: object, default: int) -> int:
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return number if 1 <= number <= 1000 else default


def serve(spec: str, *, host: str, port: int, max_sessions: int, public_url: str | None,
          directory: Path | None, idle_seconds: float) -> int:
    """Run the server until ctrl+c; every tab runs `python -m backprop_tui SPEC` in served mode."""
    os.environ.update(FilePolicy(True, directory).environ())  # textual-serve passes our environment on
    # the child imports this very package, wherever it is cd'ed to
    package_root = str(Path(__file__).resolve().parents[2])
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    server = ClassServer(app_command(spec, directory), host=host, port=port, public_url=public_url,
                         max_sessions=max_sessions, idle_seconds=idle_seconds)
    try:
        server.serve()
    except OSError as exc:
        print(f"backprop-tui: --port {port}: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0
