"""The base of the explorer's dialogs: a modal screen with a footer of its own keys.

Without one, the explorer's footer shows through beneath the dialog and offers keys
that do nothing while the dialog is open.
"""

from __future__ import annotations

from typing import TypeVar

from textual.screen import ModalScreen
from textual.widgets import Footer

ResultT = TypeVar("ResultT")


class Dialog(ModalScreen[ResultT]):
    def on_mount(self) -> None:
        # Textual runs each class's on_mount: a dialog's own handler needs no super() call
        if not self.query(Footer):
            self.mount(Footer())
