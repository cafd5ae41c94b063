"""Nothing the user did is lost: autosave after edits, the restore offer, ctrl+s, and quitting.

The app calls four things: `opened(session)` when a preset has loaded, `changed()` after
every refresh of the panels (so every kind of edit is autosaved, whoever added it),
`save()` for ctrl+s and `quit(code)` for ctrl+q. The Keeper knows the session it was given
and calls back `restored()` when an autosave has been applied to it; the app is used only
for what every Textual app offers (workers, screens, exit). The file work is the engine's
(engine.autosave, engine.save): written atomically, never into the bundled presets.
Each Keeper writes its own state file (its `instance`) and offers those of explorers
that have ended; SIGTERM and SIGHUP reach `flush` through the app.

Autosave after an SGD step on mlp_784 writes every weight (about 65 ms), so it is
debounced: DEBOUNCE seconds after the last edit, in a thread, from a copy of the state
taken on the UI thread; a quit writes at once.
"""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from rich.text import Text

from backprop_tui.serve.policy import FilePolicy, PathRefused
from backprop_tui.ui.debounce import Debounce
from backprop_tui.ui.screens.choice import Choice, ChoiceScreen
from backprop_tui.ui.screens.error_dialog import ErrorDialog
from backprop_tui.ui.screens.save_preset import SavePresetScreen

if TYPE_CHECKING:
    from textual.app import App

    from backprop_tui.engine import Session
    from backprop_tui.engine.autosave import SavedState

DEBOUNCE = 0.5  # seconds after the last edit before the autosave is written

QUIT_CHOICES = [
    Choice("save", "Save", "s", "primary"),
    Choice("discard", "Discard", "d", "error"),
    Choice("cancel", "Cancel", "c"),
]
RESTORE_CHOICES = [
    Choice("restore", "Restore", "r", "primary"),
    Choice("fresh", "Start fresh", "f"),
]
OVERWRITE_CHOICES = [
    Choice("overwrite", "Overwrite", "o", "error"),
    Choice("cancel", "Cancel", "c"),
]


@dataclass(frozen=True)
class StateCopy:
    """What save_state and save_preset read of a session, copied on the UI thread for a worker."""

    preset: Any
    values: Mapping[str, Any]
    requires_grad: Mapping[str, bool]
    learning_rate: float
    sgd_losses: list[float]
    steps_taken: int
    exercise: Any  # the exercise's progress: frozen, so shared, not copied

    @classmethod
    def of(cls, session: "Session") -> "StateCopy":
        values = {name: value.detach().clone() for name, value in session.values.items()}
        return cls(session.preset, values, dict(session.requires_grad), session.learning_rate,
                   list(session.sgd_losses), session.steps_taken, session.exercise)


def differs_from_preset(state: "SavedState", preset) -> bool:
    """True when restoring `state` would change anything the preset starts with."""
    return bool(
        state.values
        or any(state.requires_grad.get(leaf.name) != leaf.requires_grad for leaf in preset.leaves)
        or state.learning_rate != preset.learning_rate
        or state.steps_taken
        or state.loss_history
        or state.exercise is not None
    )


def describe_state(state: "SavedState", preset) -> str:
    """What restoring `state` changes, in a few words."""
    from backprop_tui.ui.format import fmt

    flags = sum(state.requires_grad.get(leaf.name) != leaf.requires_grad for leaf in preset.leaves)
    parts = [f"{len(state.values)} leaf value(s) changed"]
    if flags:
        parts.append(f"{flags} requires_grad flag(s) changed")
    if state.steps_taken:
        parts.append(f"{state.steps_taken} SGD step(s)")
    if state.learning_rate != preset.learning_rate:
        parts.append(f"learning rate {fmt(state.learning_rate)}")
    return ", ".join(parts)


def saved_when(state: "SavedState") -> str:
    """The file's saved_at, made printable and short: it comes from a file, like any text there."""
    from backprop_tui.engine.preset import printable

    when = printable(state.saved_at[:64]).replace("T", " ").replace("+00:00", " UTC")
    return when or "an earlier run"


def restore_message(states: list["SavedState"], preset) -> Text:
    """The restore offer: one autosaved session, or several (other explorers' too), numbered."""
    if len(states) == 1:
        text = Text.assemble("An autosaved session of ", (preset.name, "bold"), f" from {saved_when(states[0])}: ")
        text.append(describe_state(states[0], preset) + ".\n\n")
        text.append("Restore it (one edit: ctrl+z undoes it), or start from the preset's values "
                    "(the autosave is then deleted)?", style="dim")
        return text
    text = Text.assemble(f"{len(states)} autosaved sessions of ", (preset.name, "bold"),
                         " (explorers that ended without saving):\n")
    for number, state in enumerate(states, 1):
        text.append(f"\n{number}. from {saved_when(state)}: {describe_state(state, preset)}")
    text.append("\n\nRestore one (the others are kept), or start from the preset's values "
                "(all of them are then deleted)?", style="dim")
    return text


def restore_choices(count: int) -> list[Choice]:
    if count == 1:
        return RESTORE_CHOICES
    numbered = [Choice(f"restore-{i}", f"Restore {i}", str(i), "primary" if i == 1 else "default")
                for i in range(1, count + 1)]
    return [*numbered, Choice("fresh", "Start fresh", "f")]


def default_save_path(preset_name: str, cwd: Path | None = None) -> str:
    """./<preset>-edited.toml, or -edited-2, -3, ... if that file exists."""
    stem = f"{preset_name}-edited"
    try:
        cwd = cwd or Path.cwd()
    except OSError:  # the current folder was deleted: the save screen says so on enter
        return f"./{stem}.toml"
    for n in range(1, 1000):
        name = f"{stem}.toml" if n == 1 else f"{stem}-{n}.toml"
        if not os.path.lexists(cwd / name):
            return f"./{name}"
    return f"./{stem}.toml"


def save_target(text: str, policy: FilePolicy) -> Path:
    """The file ctrl+s writes for `text` (".toml" added when missing), or PathRefused / FileRefused."""
    from backprop_tui.engine.files import write_target
    from backprop_tui.engine.save import with_toml_suffix

    return write_target(with_toml_suffix(policy.checked(text)))


def save_problem(text: str, policy: FilePolicy) -> str | None:
    """Why `text` cannot be saved to, in one line, or None (an existing file is asked about later)."""
    from backprop_tui.engine import BackpropError
    from backprop_tui.engine.preset import printable

    try:
        target = save_target(text, policy)
    except PathRefused as exc:
        return printable(str(exc))
    except BackpropError as exc:
        return f"{printable(text)}: {exc}"
    if inside_bundled_presets(target):
        return f"{printable(text)} is inside the bundled presets folder; save your preset somewhere else"
    return None


def inside_bundled_presets(path: Path) -> bool:
    from backprop_tui.engine.preset import presets_dir

    bundled = presets_dir().resolve()
    try:
        target = path.resolve()
    except (OSError, RuntimeError):
        return False
    return target == bundled or bundled in target.parents


class Keeper:
    """Autosave, restore offer, save as preset, and the quit question, for one app."""

    def __init__(self, app: "App", restored: Callable[[], None], cursor_blink: bool = True,
                 autosave: bool = True) -> None:
        from backprop_tui.engine.locations import new_instance  # no torch before the first paint

        self.app = app
        self.restored = restored  # an autosave was applied to the session: show it
        self.cursor_blink = cursor_blink
        self.session: "Session | None" = None
        self.armed = False  # autosave only once the restore question is settled
        self.last_problem: str | None = None  # the last autosave failure, if any
        self.saves_written = 0
        self.autosave_on = autosave
        self.instance = new_instance()  # this explorer's own state files; others' are offered, never written
        self._adopted: list[Path] = []  # restored files of ended explorers: removed once ours is written
        self._shown_problem: str | None = None
        self._autosave = Debounce(app, DEBOUNCE, self._write_later, "autosave")
        self._lock = threading.Lock()
        self._seq = 0
        self._written_seq = 0

    # ------------------------------------------------------------ autosave

    def opened(self, session: "Session", resumed: bool = False) -> None:
        """A preset loaded: write the previous one's pending save, then look for an autosave.
        `resumed`: a session this explorer left behind and came back to; its autosave is its
        own, so there is nothing to offer."""
        self.flush()
        self.session = session
        self.armed = resumed and self.autosaves
        if resumed or not self.autosaves:
            return  # served: the server's data directory is not the browser's to write
        self.app.run_worker(self._look_up(session), group="autosave-lookup", exit_on_error=False)

    @property
    def autosaves(self) -> bool:
        """Off in a served session, with --no-autosave and with BACKPROP_TUI_AUTOSAVE=0."""
        return self.autosave_on and self._policy().autosave

    async def _look_up(self, session: "Session") -> None:
        from backprop_tui.engine.autosave import find_states, remove_stale_files

        try:
            await asyncio.to_thread(remove_stale_files)  # what a killed autosave left behind
            lookups = await asyncio.to_thread(find_states, session.preset, self.instance)
        except Exception as exc:  # noqa: BLE001 - a broken data dir must not stop the explorer
            self._status(f"autosave not read: {type(exc).__name__}: {exc}", error=True)
            self._arm(session)
            return
        if session is not self.session:
            return  # another preset was opened meanwhile
        problems = [lookup.problem for lookup in lookups if lookup.problem]
        if problems:
            self._status("autosave: " + "; ".join(problems), error=True)
        found = [(lookup.state, lookup.path) for lookup in lookups
                 if lookup.state is not None and differs_from_preset(lookup.state, session.preset)]
        if not found:
            self._arm(session)
            return
        states = [state for state, _ in found]
        title = "Restore your last session?" if len(states) == 1 else "Restore an autosaved session?"
        screen = ChoiceScreen(title, restore_message(states, session.preset), restore_choices(len(states)),
                              on_escape="later", box_id="restore-box", escape_label="decide next time")
        self.app.push_screen(screen, lambda answer: self._restore_answered(session, found, answer))

    def _restore_answered(self, session: "Session", found: list, answer: str | None) -> None:
        """Restore one (its file goes once this explorer's own autosave holds it), start fresh
        (every offered file goes), or decide next time (every file stays as it is)."""
        from backprop_tui.engine import EditError
        from backprop_tui.engine.autosave import AutosaveError, remove_state_file, restore

        if session is not self.session:
            return
        if answer is not None and answer.startswith("restore"):
            number = 1 if answer == "restore" else int(answer.removeprefix("restore-"))
            state, path = found[number - 1]
            try:
                restore(session, state)
            except EditError as exc:
                self._status(f"cannot restore the autosave: {exc}", error=True)
            else:
                self._adopted.append(path)
                self._arm(session)
                self.restored()
                self._status("restored the autosaved session (ctrl+z undoes it)")
                return
        elif answer == "fresh":
            try:
                for _, path in found:
                    remove_state_file(path)
            except AutosaveError as exc:
                self._status(str(exc), error=True)
        self._arm(session)

    def _arm(self, session: "Session") -> None:
        if session is self.session:
            self.armed = True
            if session.undo_stack:  # edited while the question was open
                self.changed()

    def changed(self) -> None:
        """The panels were refreshed after an edit: write the autosave soon."""
        if not self.armed or self.session is None:
            return
        self._autosave.poke()

    def _write_later(self) -> None:
        if self.session is None:
            return
        copy, seq = StateCopy.of(self.session), self._next_seq()
        self.app.run_worker(self._write_in_thread(copy, seq), group="autosave", exit_on_error=False)

    async def _write_in_thread(self, copy: StateCopy, seq: int) -> None:
        problem = await asyncio.to_thread(self._write, copy, seq)
        if problem:
            self._report_failure(problem)

    def _report_failure(self, problem: str) -> None:
        """A failing autosave: its reason in full in a dialog the first time, in the status after."""
        self._status(f"autosave failed: {problem}", error=True)
        if problem != self._shown_problem:
            self._shown_problem = problem
            self.app.push_screen(ErrorDialog(
                "Autosave failed",
                f"{problem}\n\nYour edits are not kept on disk until this is fixed: "
                "save them as a preset file (ctrl+s) before you quit."))

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _write(self, copy: StateCopy, seq: int) -> str | None:
        """Write one state (any thread); an older copy never overwrites a newer one."""
        from backprop_tui.engine import BackpropError
        from backprop_tui.engine.autosave import remove_state_file, save_state

        with self._lock:
            if seq <= self._written_seq:
                return None
            try:
                save_state(copy, self.instance)  # type: ignore[arg-type] - reads what a Session has
            except BackpropError as exc:
                self.last_problem = str(exc)
                return str(exc)
            except Exception as exc:  # noqa: BLE001 - a full disk must not stop the explorer
                self.last_problem = f"{type(exc).__name__}: {exc}"
                return self.last_problem
            self._written_seq = seq
            self.saves_written += 1
            self.last_problem = None
            adopted, self._adopted = self._adopted, []
            for path in adopted:  # restored and now held in our own file
                try:
                    remove_state_file(path)
                except BackpropError:
                    pass
            return None

    def flush(self) -> None:
        """Write a pending autosave now, on this thread (before quitting or switching presets)."""
        if not self._autosave.pending:
            return
        self._autosave.cancel()
        if self.session is not None:
            self._write(StateCopy.of(self.session), self._next_seq())

    # ------------------------------------------------------------ save as a preset

    def save(self, quit_after: bool = False, code: int = 0) -> None:
        """ctrl+s: ask for a path, confirm an overwrite, write the preset in a thread."""
        session = self.session
        if session is None or any(isinstance(s, SavePresetScreen) for s in self.app.screen_stack):
            return
        if not self._policy().files_allowed:
            self._status(self._policy().refusal("saving"), error=True)
            return
        screen = SavePresetScreen(session.preset.name, default_save_path(session.preset.name),
                                  self.cursor_blink, quitting=quit_after,
                                  check=lambda text: save_problem(text, self._policy()))
        self.app.push_screen(screen, lambda path: self._path_given(session, path, quit_after, code))

    def _path_given(self, session: "Session", path: str | None, quit_after: bool, code: int) -> None:
        if path is None or session is not self.session:
            return
        from backprop_tui.engine import BackpropError

        try:
            target = save_target(path, self._policy())
        except (PathRefused, BackpropError) as exc:
            self._status(str(exc), error=True)
            return
        path = str(target)
        if os.path.lexists(target) and not inside_bundled_presets(target):
            message = Text.assemble((str(target), "bold"), " exists. Replace it with the edited preset?")
            screen = ChoiceScreen("Overwrite the file?", message, OVERWRITE_CHOICES, on_escape="cancel",
                                  box_id="overwrite-box")

            def answered(answer: str | None) -> None:
                if answer == "overwrite":
                    self._start_save(session, path, True, quit_after, code)

            self.app.push_screen(screen, answered)
            return
        self._start_save(session, path, False, quit_after, code)

    def _start_save(self, session: "Session", path: str, overwrite: bool, quit_after: bool, code: int) -> None:
        top = session.undo_stack[-1] if session.undo_stack else None
        copy = StateCopy.of(session)
        self._status(f"saving {path}…")
        self.app.run_worker(self._save_in_thread(session, copy, top, path, overwrite, quit_after, code),
                            group="save-preset", exit_on_error=False)

    async def _save_in_thread(self, session, copy, top, path, overwrite, quit_after, code) -> None:
        from backprop_tui.engine import BackpropError
        from backprop_tui.engine.save import save_preset

        try:
            written = await asyncio.to_thread(save_preset, copy, path, overwrite=overwrite)
        except BackpropError as exc:
            self._status("not saved", error=True)
            self.app.push_screen(ErrorDialog("Cannot save the preset", str(exc)))
            return
        except Exception as exc:  # noqa: BLE001
            self._status("not saved", error=True)
            self.app.push_screen(ErrorDialog("Cannot save the preset", f"{type(exc).__name__}: {exc}"))
            return
        if (session.undo_stack[-1] if session.undo_stack else None) is top:
            session.mark_saved()  # only if no edit came in while the file was written
        self._status(f"saved {written} (o opens it)")
        if quit_after:
            self._exit(code)

    # ------------------------------------------------------------ quit

    def quit(self, code: int) -> None:
        """ctrl+q: unsaved edits ask save / discard / cancel; otherwise quit at once."""
        session = self.session
        if any(isinstance(s, ChoiceScreen) and s.box_id == "quit-box" for s in self.app.screen_stack):
            return
        if session is None or not session.dirty:
            self._exit(code)
            return
        edits = len(session.undo_stack)
        self.flush()  # so that what the question says of the autosave is what will happen
        if not self.autosaves:
            kept = "autosave is off, so they are lost"
        elif self.last_problem is not None:
            kept = f"the autosave failed ({self.last_problem}), so they are lost"
        else:
            kept = "the autosave still offers them next time"
        message = Text.assemble(
            f"{session.preset.name} has unsaved edits ({edits} in the undo history).\n\n",
            (f"save: write them as a new preset file, then quit; discard: quit without a preset file "
             f"({kept}); cancel: back to the explorer.", "dim"),
        )
        screen = ChoiceScreen("Quit with unsaved edits?", message, QUIT_CHOICES, on_escape="cancel",
                              box_id="quit-box")

        def answered(answer: str | None) -> None:
            if answer == "save":
                self.save(quit_after=True, code=code)
            elif answer == "discard":
                self._exit(code)

        self.app.push_screen(screen, answered)

    def _exit(self, code: int) -> None:
        self.flush()
        self.app.exit(code)

    def _policy(self) -> FilePolicy:
        return getattr(self.app, "file_policy", None) or FilePolicy()

    # ------------------------------------------------------------ status

    def _status(self, text: str, error: bool = False) -> None:
        from backprop_tui.ui.widgets.header import AppHeader

        try:
            self.app.screen_stack[0].query_one(AppHeader).show_status(text, error=error)
        except Exception:  # noqa: BLE001 - the app may be closing
            pass
