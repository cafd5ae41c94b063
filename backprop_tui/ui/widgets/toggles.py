"""A radio button and a checkbox whose mark differs between on and off.

Textual's draw the same mark either way and show the state by colour alone: on a
monochrome terminal, a projector or to a colour-blind reader, on and off look alike.
"""

from __future__ import annotations

from textual.widgets import Checkbox, RadioButton


class MarkedRadioButton(RadioButton):
    def render(self):
        self.BUTTON_INNER = "●" if self.value else " "
        return super().render()


class MarkedCheckbox(Checkbox):
    def render(self):
        self.BUTTON_INNER = "X" if self.value else " "
        return super().render()
