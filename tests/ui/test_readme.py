"""The README's keys table is the app's own, so it cannot drift from the bindings."""

import re
from pathlib import Path

from backprop_tui.engine.preset import bundled_presets
from backprop_tui.ui.docs import bindings_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_readme_lists_every_binding():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert bindings_markdown().strip() in readme


def test_readme_screenshot_exists_and_was_made_by_the_app():
    svg = (ROOT / "docs" / "screenshot.svg").read_text(encoding="utf-8")
    assert svg.startswith("<svg")
    assert "linear_regression" in svg  # the title the app gives its export


def test_readme_lists_every_bundled_preset():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `(\w+)` \|", readme.split("## Presets", 1)[1], re.M))
    assert listed == set(bundled_presets())
