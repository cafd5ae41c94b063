"""The README material the app makes itself: the bindings table and an SVG screenshot.

    python -m backprop_tui.ui.docs bindings          # Markdown table on stdout
    python -m backprop_tui.ui.docs screenshot OUT.svg [PRESET]

The table is built from the Binding objects, so it cannot drift from the keys; a test
checks docs/ui-bindings.md against it.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from textual.binding import Binding
from textual.keys import key_to_character

from backprop_tui.ui.app import BackpropApp


SPELLED = {"plus": "+", "minus": "-", "escape": "esc"}


def key_names(binding: Binding) -> str:
    """`ctrl+q`, `?`, `+` / `=`: keys as typed, not Textual's `^q` footer style."""
    names = []
    for single in Binding.make_bindings([binding]):
        key = single.key
        character = None if "+" in key else key_to_character(key)
        shown = SPELLED.get(key) or (character if character and character.isprintable() else key)
        names.append(f"`{shown}`")
    return " / ".join(names)


def bindings_markdown() -> str:
    lines = []
    for title, bindings in BackpropApp().binding_groups():
        lines.append(f"### {title}\n")
        lines.append("| Key | Action | What it does | id |")
        lines.append("| --- | --- | --- | --- |")
        for binding in bindings:
            tooltip = binding.tooltip.replace("|", "\\|")
            lines.append(f"| {key_names(binding)} | {binding.description} | {tooltip} | `{binding.id}` |")
        lines.append("")
    return "\n".join(lines)


async def _screenshot(path: Path, preset: str, size: tuple[int, int]) -> None:
    app = BackpropApp(preset, cursor_blink=False)
    async with app.run_test(size=size) as pilot:
        while app.preset_pending:
            await app.workers.wait_for_complete()
            await pilot.pause(0.05)
        await pilot.pause()
        path.write_text(app.export_screenshot(title=f"backprop-tui {preset}"), encoding="utf-8")


def screenshot(path: str | Path, preset: str = "linear_regression", size: tuple[int, int] = (100, 30)) -> None:
    asyncio.run(_screenshot(Path(path), preset, size))


def main(argv: list[str]) -> int:
    if argv[:1] == ["bindings"]:
        print(bindings_markdown())
        return 0
    if argv[:1] == ["screenshot"] and len(argv) in (2, 3):
        screenshot(argv[1], *argv[2:])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
