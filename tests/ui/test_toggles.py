"""The export format and the skip-zero_grad box show their state by a mark, not by colour alone."""

from __future__ import annotations

from textual.app import App
from textual.widgets import RadioSet
from ui_support import pilot_test

from backprop_tui.ui.widgets.toggles import MarkedCheckbox, MarkedRadioButton


class Toggles(App):
    def compose(self):
        yield MarkedCheckbox("skip", False, id="box")
        with RadioSet():
            yield MarkedRadioButton("a", value=True, id="a")
            yield MarkedRadioButton("b", id="b")


def _drawn(widget) -> str:
    return widget.render().plain


@pilot_test
async def test_on_and_off_differ_in_their_characters():
    app = Toggles()
    async with app.run_test() as pilot:
        box, a, b = app.query_one("#box"), app.query_one("#a"), app.query_one("#b")
        assert "X" not in _drawn(box) and _drawn(a).count("●") == 1 and "●" not in _drawn(b)
        box.value = True
        b.value = True  # the set turns a off
        await pilot.pause()
        assert "X" in _drawn(box)
        assert "●" not in _drawn(a) and _drawn(b).count("●") == 1
