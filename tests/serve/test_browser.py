"""`backprop-tui serve` in a real browser: headless Chromium (Debian's `chromium`) driven by
Playwright, reading the text xterm.js holds in its buffer.

The page's script (textual-serve's textual.js) keeps its xterm.js Terminal to itself; the
test serves the same script with one line added that lists the terminals on `window`, then
reads them through xterm's public buffer API. Numbers expected on screen are computed by the
engine in this process, never written here.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from backprop_tui.engine import Session, bundled_presets, load_preset
from backprop_tui.engine.numbers import fmt

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
INSTALL = ("the browser test needs headless Chromium and Playwright: "
           "apt-get install -y chromium; pip install -c constraints.txt -e '.[test]' (installs playwright); "
           ".ci/run does both")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT = 90.0  # seconds an explorer may take to start (it imports torch) on a busy machine
HOOK = "const t=new w(e,{ping:r});"  # where textual.js makes each terminal
READ_SCREEN = """() => {
  const term = (window.textualTerminals || [])[0];
  if (!term) return "";
  const lines = [];
  for (let y = 0; y < term.rows; y++) {
    const line = term.buffer.active.getLine(y);
    lines.push(line ? line.translateToString(true) : "");
  }
  return lines.join("\\n");
}"""


def _playwright():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}: {INSTALL}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(f"playwright is not installed: {INSTALL}")
    return sync_playwright


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def server():
    _playwright()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "backprop_tui", "serve", "linear_regression", "--port", str(port),
         "--max-sessions", "2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "TEXTUAL_ANIMATIONS": "none"},
    )
    first = process.stdout.readline()
    url = f"http://127.0.0.1:{port}"
    assert f"open {url} in a browser" in first, first
    yield process, url
    if process.poll() is None:
        process.kill()
        process.wait(10)


def read_screen(page) -> str:
    return page.evaluate(READ_SCREEN)


def wait_for(page, pattern: str, timeout: float = WAIT) -> str:
    """The terminal's text once `pattern` (a regex) is on it."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = read_screen(page)
        if re.search(pattern, text):
            return text
        page.wait_for_timeout(100)
    raise AssertionError(f"{pattern!r} never appeared; the screen was:\n{text}")


def open_tab(context, url: str, script: str):
    page = context.new_page()
    page.route("**/static/js/textual.js",
               lambda route: route.fulfill(body=script, content_type="application/javascript"))
    page.goto(url)
    wait_for(page, r"J = 84\.5\b")
    wait_for(page, r"opened linear_regression")  # the panels take keys from now on
    page.focus(".xterm-helper-textarea")
    return page


def header_loss(text: str) -> str:
    return re.findall(r"J = (\S+)", text.splitlines()[0])[-1]  # the title may hold a formula "J = (wx..."


def test_a_class_in_the_browser(server):
    process, url = server
    import textual_serve

    script = (Path(textual_serve.__file__).parent / "static" / "js" / "textual.js").read_text(encoding="utf-8")
    assert HOOK in script, "textual-serve's textual.js changed: update HOOK to where it makes its terminals"
    script = script.replace(HOOK, HOOK + "(window.textualTerminals=window.textualTerminals||[]).push(t.terminal);")
    preset = load_preset(bundled_presets()["linear_regression"])
    first_leaf = preset.leaves[0].name

    with _playwright()() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1100, "height": 720})
        one = open_tab(context, url, script)

        # tab to the leaves, + nudges the first leaf by the step the panel shows
        one.keyboard.press("Tab")
        screen = wait_for(one, r"\+step")  # the footer of the leaves panel: it has the focus now
        step = float(re.search(r"step ±(\S+)", screen).group(1))
        one.keyboard.type("+")
        nudged = Session(preset)
        nudged.nudge(first_leaf, (), step)
        text = wait_for(one, rf"J = {re.escape(fmt(nudged.snapshot.loss))}\b")
        assert header_loss(text) == fmt(nudged.snapshot.loss) != "84.5"

        # a second tab is a fresh explorer; an SGD step there leaves the first one alone
        two = open_tab(context, url, script)
        assert header_loss(read_screen(two)) == "84.5"
        two.keyboard.type("s")
        stepped = Session(preset)
        stepped.step()
        wait_for(two, rf"J = {re.escape(fmt(stepped.snapshot.loss))}\b")
        two.keyboard.press("Control+z")  # each tab has its own undo
        wait_for(two, r"J = 84\.5\b")
        assert header_loss(read_screen(one)) == fmt(nudged.snapshot.loss)

        # a third tab is refused with a page that says why
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=10)
        assert refused.value.code == 503 and "The class is full" in refused.value.read().decode()

        # the served session opens no file by path
        one.keyboard.type("o")
        wait_for(one, r"opening files is off in a served")
        children = descendants(process.pid)
        assert len([pid for pid in children if alive(pid)]) >= 2
        browser.close()

    # ctrl+c: the server ends its sessions and exits 0
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if alive(pid)]
