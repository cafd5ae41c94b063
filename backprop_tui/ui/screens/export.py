"""Export the current state: Markdown notes, JSON (as `show --format json`), Graphviz DOT.

The text is made by engine.export when the screen opens (the state the user sees) and
written with engine.files.atomic_write_text: a temporary file renamed over the target,
so a crash never leaves half a file. An existing file is overwritten only after a yes in
a confirmation dialog. Errors (a missing directory, no permission) show under the path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, RadioSet, Static

from backprop_tui.ui.widgets.toggles import MarkedRadioButton
from backprop_tui.ui.screens.dialog import Dialog

if TYPE_CHECKING:
    from backprop_tui.engine import Session

FORMATS = {  # id: (label, extension)
    "markdown": ("Markdown: the annotated tree, for notes", "md"),
    "json": ("JSON: every node's value and grad, the loss history", "json"),
    "dot": ("Graphviz DOT: the graph with values and grads", "dot"),
}


def export_text(session: "Session", kind: str) -> str:
    """The session's current state in one of FORMATS, made by the engine."""
    from backprop_tui.engine.export import to_dot, to_json, to_markdown

    if kind == "markdown":
        return to_markdown(session.snapshot, session.loss_history)
    if kind == "json":
        return to_json(session.snapshot, session.loss_history)
    if kind == "dot":
        return to_dot(session.snapshot)
    raise ValueError(f"unknown export format {kind!r}")


def default_path(preset: str, kind: str) -> str:
    return f"./{preset}.{FORMATS[kind][1]}"


class ConfirmOverwrite(Dialog[bool]):
    """Yes or no: replace an existing file."""

    DEFAULT_CSS = """
    ConfirmOverwrite #confirm-box { width: 64; border: thick $warning; }
    ConfirmOverwrite #confirm-buttons { height: 3; margin-top: 1; }
    ConfirmOverwrite Button { margin-right: 2; }
    """

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes", tooltip="Replace the existing file."),
        Binding("n,escape", "answer(False)", "No", id="confirm.no", tooltip="Keep the existing file."),
    ]

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def compose(self):
        with Vertical(id="confirm-box", classes="dialog"):
            yield Static(Text("Overwrite?", style="bold yellow"))
            yield Static(Text.assemble((self.path + " ", "bold"), "already exists. Replace it?"))
            with Horizontal(id="confirm-buttons"):
                yield Button("No (n)", id="confirm-no", variant="primary")
                yield Button("Yes, overwrite (y)", id="confirm-yes", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ExportScreen(Dialog[str | None]):
    """Pick a format, type a path, enter: writes the file; dismissed with what was written."""

    DEFAULT_CSS = """
    ExportScreen #export-box { width: 80; max-width: 96%; }
    ExportScreen RadioSet { width: 1fr; margin-bottom: 1; }
    ExportScreen #export-message { height: auto; width: 100%; }
    ExportScreen .export-hint { color: $text-muted; height: auto; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="export.cancel", tooltip="Close without writing anything."),
    ]

    def __init__(self, session: "Session", cursor_blink: bool = True, kind: str = "markdown",
                 directory: str | Path | None = None) -> None:
        super().__init__()
        self.session = session
        self.cursor_blink = cursor_blink
        self.kind = kind
        self.directory = None if directory is None else Path(directory)  # where relative paths go (None: cwd)
        self._path_edited = False

    def compose(self):
        with Vertical(id="export-box", classes="dialog"):
            yield Static(Text.assemble(("Export ", "bold"), (self.session.preset.name, "bold cyan")), id="export-title")
            with RadioSet(id="export-format"):
                for kind, (label, _) in FORMATS.items():
                    yield MarkedRadioButton(label, value=kind == self.kind, id=f"export-{kind}")
            policy = getattr(self.app, "file_policy", None)
            hint = "File (relative paths start in the current directory):"
            if policy is not None and policy.served:
                hint = ("File name (inside the served directory):" if policy.files_allowed
                        else "File name of the download (your browser saves it):")
            yield Static(Text(hint), classes="export-hint")
            yield Input(default_path(self.session.preset.name, self.kind), id="export-path")
            yield Label(id="export-message")
            yield Static(Text("enter: write   shift+tab: format (arrows, space)   esc: cancel", style="dim"))

    def on_mount(self) -> None:
        field = self.query_one("#export-path", Input)
        field.cursor_blink = self.cursor_blink
        field.focus()

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        event.stop()
        kind = (event.pressed.id or "").removeprefix("export-")
        if kind not in FORMATS:
            return
        self.kind = kind
        if not self._path_edited:
            field = self.query_one("#export-path", Input)
            field.value = default_path(self.session.preset.name, kind)
            self._path_edited = False  # the change above is ours, not the user's

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_one("#export-message", Label).update("")
        if event.value != default_path(self.session.preset.name, self.kind):
            self._path_edited = True

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            self._error("type the path of the file to write")
            return
        policy = getattr(self.app, "file_policy", None)
        from backprop_tui.engine.files import FileRefused, write_target
        from backprop_tui.engine.preset import printable

        try:
            if policy is not None and policy.served:  # in a browser: a download, or a file in --dir only
                from backprop_tui.serve.policy import PathRefused

                if not policy.files_allowed:
                    self._deliver(Path(text).name)
                    return
                try:
                    text_path: str | Path = policy.resolve(text)
                except PathRefused as exc:
                    self._error(str(exc))
                    return
            else:
                text_path = text
            path = write_target(text_path, self.directory)
        except FileRefused as exc:
            self._error(f"{printable(text)}: {exc}")
            return
        if os.path.lexists(path):  # a regular file: write_target refused anything else
            self.app.push_screen(ConfirmOverwrite(text),
                                 lambda yes: self._write(path, text) if yes else self._kept(text))
            return
        self._write(path, text)

    def _kept(self, shown: str) -> None:
        self.query_one("#export-message", Label).update(
            Text(f"{shown} kept as it was; nothing written", style="yellow")
        )

    def _write(self, path: Path, shown: str) -> None:
        from backprop_tui.engine.files import atomic_write_text

        try:
            text = export_text(self.session, self.kind)
            atomic_write_text(path, text)
        except (OSError, ValueError) as exc:
            from backprop_tui.engine.preset import printable

            self._error(f"cannot write {printable(shown)}: {getattr(exc, 'strerror', None) or exc}")
            return
        except Exception as exc:  # noqa: BLE001 - a failed export must leave the explorer usable
            self._error(f"cannot export: {type(exc).__name__}: {exc}")
            return
        self.dismiss(f"exported {self.kind} to {shown}")

    def _deliver(self, name: str) -> None:
        """Served without a directory: the browser downloads the text (Textual's deliver_text)."""
        import io

        try:
            self.app.deliver_text(io.StringIO(export_text(self.session, self.kind)), save_filename=name,
                                  open_method="download", mime_type="text/plain")
        except Exception as exc:  # noqa: BLE001 - a failed export must leave the explorer usable
            self._error(f"cannot export: {type(exc).__name__}: {exc}")
            return
        self.dismiss(f"exported {self.kind}: your browser downloads {name}")

    def _error(self, message: str) -> None:
        self.query_one("#export-message", Label).update(Text(message, style="bold red"))

    def action_cancel(self) -> None:
        self.dismiss(None)


def open_export(app, on_done: Callable[[str | None], None]) -> None:
    if app.session is not None:
        app.push_screen(ExportScreen(app.session, app.cursor_blink), on_done)
