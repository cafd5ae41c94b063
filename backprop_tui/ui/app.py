"""The Textual app: routes panel messages to the Session and pushes snapshots back.

Data flows one way: a key press becomes a message, the app asks the Session (engine,
torch) for a new Snapshot, and every panel updates its labels and cells in place.
torch is imported in a thread worker after the first screen has painted.
"""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from rich.text import Text
from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, LoadingIndicator, Static
from textual.worker import get_current_worker

from backprop_tui.engine import locations
from backprop_tui.serve.policy import FilePolicy, PathRefused
from backprop_tui.ui.messages import (
    Inspect,
    InspectAgain,
    Nudge,
    OpenInEditor,
    PresetFailed,
    ResetLeaf,
    SessionReady,
    SetElement,
    ToggleRequiresGrad,
)
from backprop_tui.ui.collector import Collector
from backprop_tui.ui.persistence import Keeper
from backprop_tui.ui.teaching import actions as teaching
from backprop_tui.ui.screens.error_dialog import ErrorDialog
from backprop_tui.ui.screens.help import HelpScreen
from backprop_tui.ui.screens.preset_picker import PresetPicker
from backprop_tui.ui.screens.prompt import PromptScreen
from backprop_tui.ui.widgets.graph_view import GraphPanel, GraphView
from backprop_tui.ui.widgets.header import AppHeader
from backprop_tui.ui.widgets.inspector import FlagsReady, Inspector
from backprop_tui.ui.widgets.weight_editor import EditInput, ElementGrid, LeafList, WeightEditor

if TYPE_CHECKING:
    from backprop_tui.engine import Session

DEFAULT_PRESET = "scalar_chain"
NARROW_WIDTH = 90
WIDE_WIDTH = 160  # from here the other panels have room to spare: the graph's share shrinks
KEPT_SESSIONS = 8  # edited presets switched away from, kept with their undo history

NEEDS_SESSION = {"sgd_step", "learning_rate", "undo", "redo", "reset_all", "save_preset"}


class BackpropApp(App[int]):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "backprop-tui"

    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True,
                tooltip="Quit backprop-tui."),
        Binding("ctrl+s", "save_preset", "Save", id="app.save", show=False,
                tooltip="Save the edited values as a new preset file (asks before replacing a file)."),
        Binding("question_mark", "help", "Help", id="app.help",
                tooltip="Every key, and what each panel means."),
        Binding("s", "sgd_step", "SGD step", id="app.sgd_step",
                tooltip="One step of gradient descent: every leaf that requires grad moves by -lr × grad."),
        Binding("ctrl+z", "undo", "Undo", id="app.undo", tooltip="Undo the last edit or SGD step."),
        Binding("ctrl+y", "redo", "Redo", id="app.redo", show=False, tooltip="Redo what was undone."),
        Binding("l", "learning_rate", "Learning rate", id="app.learning_rate", show=False,
                tooltip="Type the learning rate used by SGD steps."),
        Binding("R", "reset_all", "Reset all", id="app.reset_all", show=False,
                tooltip="Put every leaf back to the preset's values and requires_grad, and clear the step count"
                        " and loss history (undoable)."),
        Binding("p", "pick_preset", "Presets", id="app.presets", show=False,
                tooltip="Open one of the bundled presets; one you edited and left comes back as you left it,"
                        " undo history included."),
        Binding("o", "open_file", "Open file", id="app.open_file", show=False,
                tooltip="Open a preset file by its path."),
        Binding("i", "about", "About this preset", id="app.about", show=False,
                tooltip="The open preset's title and description: what it sets out to show."),
        Binding("ctrl+p", "command_palette", "Commands", id="app.command_palette", show=False,
                tooltip="Search every command, including the bundled presets."),
        Binding("x", "loss_slice", "Loss slice", id="app.loss_slice", show=False,
                tooltip="Plot the output along the selected leaf element, with the tangent whose slope is the grad."),
        Binding("n", "train", "Train", id="app.train", show=False,
                tooltip="Run N SGD steps in the background with the loss curve drawn; optionally without zero_grad."),
        Binding("e", "custom_expression", "Your expression", id="app.custom_expression", show=False,
                tooltip="Type your own expression and starting values; it opens as the current graph."),
        Binding("E", "export", "Export", id="app.export", show=False,
                tooltip="Write the current state as Markdown, JSON or Graphviz DOT to a file."),
        Binding("f", "finite_differences", "Check grads", id="app.finite_differences", show=False,
                tooltip="Finite differences in float64 beside autograd's grad, for every leaf element"
                        " (kinks flagged)."),
        Binding("y", "your_gradient", "Your gradient", id="app.your_gradient", show=False,
                tooltip="Your gradient of the highlighted node: a number for one element (exact, close within 0.5%, "
                        "or wrong), or an expression for the whole tensor, checked as in the exercise."),
        Binding("v", "whole_tensor", "Whole tensor", id="app.whole_tensor", show=False,
                tooltip="The highlighted node's value or grad, every element, as a matrix that scrolls both ways."),
        Binding("b", "step_through('backward')", "Step backward", id="app.step_backward", show=False,
                tooltip="Walk the backward pass node by node: incoming grad × local derivative = contribution."),
        Binding("B", "step_through('forward')", "Step forward", id="app.step_forward", show=False,
                tooltip="Walk the forward pass node by node, in the order it runs."),
    ]

    def __init__(self, preset: str = DEFAULT_PRESET, *, cursor_blink: bool = True, theme: str = "textual-dark",
                 exercise: bool = False, remember_theme: bool = False, autosave: bool | None = None) -> None:
        """`remember_theme`: start in the theme last picked (ui/settings.py) and keep a new pick.
        `autosave`: False turns it off; None leaves it to BACKPROP_TUI_AUTOSAVE (on unless 0)."""
        super().__init__()
        self.preset_spec = preset
        self.start_exercise = exercise  # open the backprop exercise once the preset is in
        self.session: Session | None = None
        self.cursor_blink = cursor_blink
        self.file_policy = FilePolicy.from_environ()  # served in a browser: files off or confined
        if remember_theme:
            from backprop_tui.ui.settings import remembered_theme

            picked = remembered_theme()
            theme = picked if picked in self.available_themes else theme
        self.theme = theme
        # from here on: only a pick in the palette is remembered, and never a served
        # session's (the server's data directory is not a student's to write)
        self.remember_theme = remember_theme and self.file_policy.autosave
        self.inspected: str | None = None
        self.inspected_index: tuple[int, ...] | None = None  # the grid cursor's element, if any
        self.preset_pending = True  # a preset was asked for and has not arrived (or failed) yet
        self._load_generation = 0
        self._preset_titles: list[tuple[str, str]] | None = None
        self._pending_spec: str | None = None  # what the load in flight was asked to open
        self._open_spec: str | None = None  # what the open session was opened as (None: made here)
        self._left_behind: dict[str, Session] = {}  # edited sessions switched away from, by spec
        # autosave, restore offer, ctrl+s, the quit question
        self.keeper = Keeper(self, restored=self._refresh_panels, cursor_blink=cursor_blink,
                             autosave=locations.autosave_enabled() if autosave is None else autosave)
        self.collector = Collector(self)  # garbage collection between edits, not during them
        self._caught_signals: list = []  # (loop, signal number) handled by `terminated`

    def compose(self):
        yield AppHeader(id="header")
        yield LoadingIndicator(id="loading")
        yield Static(id="empty")
        with Horizontal(id="body"):
            yield GraphPanel(id="graph")
            with Vertical(id="right"):
                yield WeightEditor(id="weights", cursor_blink=self.cursor_blink)
                yield Inspector(id="inspector")
        yield Footer()

    def pop_screen(self):
        """A dialog answered twice before it closed (Enter pressed twice, fast) pops nothing more."""
        if len(self.screen_stack) <= 1:
            from textual.await_complete import AwaitComplete

            async def nothing() -> None:
                return None

            return AwaitComplete(nothing()).call_next(self)
        return super().pop_screen()

    def on_resize(self, event: events.Resize) -> None:
        self.set_width_classes(event.size.width)

    def set_width_classes(self, width: int) -> None:
        self.screen.set_class(width < NARROW_WIDTH, "-narrow")
        self.screen.set_class(width >= WIDE_WIDTH, "-wide")

    def on_mount(self) -> None:
        self.set_width_classes(self.size.width)
        body = self.query_one("#body")
        # Hidden and disabled until a session exists: keys pressed while torch loads
        # must not act on panels that have nothing to show.
        body.display = False
        body.disabled = True
        self.set_focus(None)
        self.query_one("#empty").display = False
        # after the first paint: importing torch in the worker competes for the GIL
        self.call_after_refresh(self.open_preset, self.preset_spec)
        self._catch_termination()

    def _catch_termination(self) -> None:
        """SIGTERM and SIGHUP (a closed terminal window) end the explorer as ctrl+q would
        without its question: the pending autosave is written, the terminal is given back."""
        import asyncio
        import signal

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            try:
                loop.add_signal_handler(signum, self.terminated, signum)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no such signal
                return
            self._caught_signals.append((loop, signum))

    def on_unmount(self) -> None:
        for loop, signum in self._caught_signals:
            loop.remove_signal_handler(signum)
        self._caught_signals.clear()

    def terminated(self, signum: int) -> None:
        self.keeper.flush()
        self.exit(return_code=128 + signum)

    # ------------------------------------------------------------ loading

    def open_preset(self, spec: str) -> None:
        """Load a bundled preset or a file in a thread; the current one stays until it succeeds.
        A preset left behind with edits comes back as it was left, undo history included."""
        self._load_generation += 1
        self._pending_spec = spec
        kept = self._left_behind.pop(_spec_key(spec), None)
        if kept is not None:
            self.post_message(SessionReady(kept, self._load_generation, resumed=True))
            return
        self.preset_pending = True
        self.query_one(AppHeader).show_status(f"opening {Path(spec).name}…")
        self._load(spec, self._load_generation)

    @work(thread=True, exclusive=True, group="preset", description="loading a preset")
    def _load(self, spec: str, generation: int) -> None:
        """Load in a daemon thread of our own and wait for it here, watching for the worker
        to be cancelled: quitting cancels it, and this returns at once. A Textual thread
        worker runs in asyncio's default executor, which the app's shutdown (and the
        interpreter's exit) waits for; a daemon thread is simply left behind when the process
        ends, so ctrl+q during a long load ends the process at once."""
        worker = get_current_worker()
        outcome: list[Message] = []
        done = threading.Event()

        def load() -> None:
            try:
                outcome.append(self._loaded(spec, generation))
            finally:
                done.set()

        threading.Thread(target=load, name="preset-load", daemon=True).start()
        while not done.wait(0.05):
            if worker.is_cancelled:
                return
        if outcome and not worker.is_cancelled:
            self.post_message(outcome[0])

    @staticmethod
    def _loaded(spec: str, generation: int) -> Message:
        """SessionReady, or PresetFailed with the reason in one line."""
        # The first call imports torch (about 2 s); the screen is already painted.
        try:
            from backprop_tui.engine import BackpropError, Session, load_preset, resolve_preset
        except Exception as exc:  # a broken install: say so in the dialog rather than crash
            return PresetFailed(spec, f"cannot import the engine: {exc}")
        try:
            session = Session(load_preset(resolve_preset(spec)))
            if session.preset.answers:  # a saved exercise: its answers judged on these values
                from backprop_tui.engine.exercise import Exercise
                from backprop_tui.engine.exercise.grading import saved_progress

                session.exercise = saved_progress(Exercise(session.preset, session.snapshot))
        except BackpropError as exc:
            return PresetFailed(spec, str(exc))
        except Exception as exc:  # noqa: BLE001 - any failure must leave the app usable
            return PresetFailed(spec, f"{type(exc).__name__}: {exc}")
        return SessionReady(session, generation)

    def on_session_ready(self, message: SessionReady) -> None:
        if message.generation != self._load_generation:
            return  # a newer request superseded this one
        self.preset_pending = False
        self._leave_behind()
        self.session = message.session
        self._open_spec = self._pending_spec
        self._pending_spec = None
        self.keeper.opened(self.session, resumed=message.resumed)
        snapshot = self.session.snapshot
        self.inspected = snapshot.output
        self.query_one("#loading").display = False
        self.query_one("#empty").display = False
        body = self.query_one("#body")
        body.disabled = False
        body.display = True
        with self.batch_update():
            self.query_one(GraphPanel).load(snapshot)
            self.query_one(WeightEditor).load(snapshot)
            self.query_one(Inspector).clear()  # a new preset is read from the top
            self._refresh_panels()
            self.query_one(AppHeader).show_status(self._opened_report(message.resumed))
        self.query_one(GraphView).focus()
        self.refresh_bindings()
        if self.start_exercise:
            self.start_exercise = False
            self.action_exercise()

    def _leave_behind(self) -> None:
        """Keep the open session, if it has edits, for when its preset is opened again."""
        session, spec = self.session, self._open_spec
        if session is None or spec is None or not (session.can_undo or session.can_redo):
            return
        self._left_behind.pop(_spec_key(spec), None)
        self._left_behind[_spec_key(spec)] = session
        while len(self._left_behind) > KEPT_SESSIONS:  # the oldest goes (its autosave stays)
            self._left_behind.pop(next(iter(self._left_behind)))

    def _opened_report(self, resumed: bool) -> str:
        session = self.session
        if not resumed:
            return f"opened {session.preset.name}"
        edits = len(session.undo_stack)
        return f"back to {session.preset.name} as you left it: {edits} edit{'s' * (edits != 1)} (ctrl+z undoes)"

    def on_preset_failed(self, message: PresetFailed) -> None:
        self.preset_pending = False
        self._pending_spec = None
        self.query_one("#loading").display = False
        if self.session is None:
            empty = self.query_one("#empty", Static)
            empty.update(Text("No preset is open.  p: pick a bundled preset   o: open a file   ctrl+q: quit"))
            empty.display = True
            self.query_one(AppHeader).show_status("no preset open", error=True)
        else:
            self.query_one(AppHeader).show_status(f"could not open {Path(message.spec).name}", error=True)
        self.push_screen(ErrorDialog("Cannot open this preset", message.message))

    # ------------------------------------------------------------ panels

    def _refresh_panels(self, edit: bool = False) -> None:
        """Show the session's snapshot in every panel. `edit`: a key edited a value, so the
        inspector leaves the sections below its edge for when they are scrolled into view."""
        session = self.session
        snapshot, previous = session.snapshot, session.previous
        with self.batch_update():
            self.query_one(AppHeader).update_session(session)
            self.query_one(GraphPanel).update_snapshot(snapshot, previous)
            self.query_one(WeightEditor).update_snapshot(snapshot, previous)
            self._inspect(edit)
        self.keeper.changed()  # after every edit, whichever key made it: autosave soon
        self.collector.edited()

    def _inspect(self, edit: bool = False) -> None:
        session = self.session
        snapshot = session.snapshot
        name = self.inspected if self.inspected in snapshot else snapshot.output
        previous = session.previous
        before = previous.node(name) if previous is not None and name in previous else None
        index = self.inspected_index if name == self.inspected else None
        # chain rule, contributions, paths, per sample, flags: in the edit when cheap, else in
        # the inspector's worker (Inspector.request)
        teaching.analyse(self, name, before, index, edit)

    def _apply(self, edit: Callable[..., object], *args, report: Callable[[], str] | None = None) -> None:
        """Run one session edit and show it, its label (or `report()`) in the header; a
        refused edit shows its reason and changes nothing."""
        from backprop_tui.engine import EditError

        try:
            edit(*args)
        except EditError as exc:
            self.query_one(AppHeader).show_status(str(exc), error=True)
            self.bell()
            return
        self._show_edit(report() if report is not None else self._last_label())

    def _show_edit(self, report: str) -> None:
        """After an edit: every panel, and `report` in the header."""
        self._refresh_panels(edit=True)
        self._report(report)

    def _last_label(self) -> str:
        stack = self.session.undo_stack
        return stack[-1].label if stack else ""

    def _report(self, text: str) -> None:
        header = self.query_one(AppHeader)
        header.show_status(text)
        warnings = self.session.snapshot.warnings
        if warnings:
            header.show_status("; ".join(warnings), error=True)

    # ------------------------------------------------------------ messages from panels

    def on_inspect(self, message: Inspect) -> None:
        if self.session is not None and message.name in self.session.snapshot:
            self.inspected = message.name
            self.inspected_index = message.index
            self._inspect()

    def on_inspect_again(self, message: InspectAgain) -> None:
        if self.session is not None:
            self._inspect()

    def on_flags_ready(self, message: FlagsReady) -> None:
        """The inspector's flags of every node: the graph marks them, if still current."""
        from textual.css.query import NoMatches

        if self.session is None or message.snapshot is not self.session.snapshot:
            return
        try:
            tree = self.query_one(GraphView)
        except NoMatches:  # a preset being swapped in: the next flags mark it
            return
        tree.set_flags(set(message.by_node))

    def on_open_in_editor(self, message: OpenInEditor) -> None:
        self.query_one(WeightEditor).select_leaf(message.name, focus_grid=True)

    def on_set_element(self, message: SetElement) -> None:
        from backprop_tui.engine import EditError

        weights = self.query_one(WeightEditor)
        try:
            self.session.set_element(message.name, message.index, message.value)
        except EditError as exc:
            weights.edit_failed(str(exc))
            return
        weights.edit_succeeded()
        self._show_edit(self._last_label())

    def on_nudge(self, message: Nudge) -> None:
        self._apply(self.session.nudge, message.name, message.index, message.delta)

    def on_toggle_requires_grad(self, message: ToggleRequiresGrad) -> None:
        self._apply(self.session.toggle_requires_grad, message.name)

    def on_reset_leaf(self, message: ResetLeaf) -> None:
        self._apply(self.session.reset_leaf, message.name)

    # ------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in NEEDS_SESSION and self.session is None:
            return None
        return True

    def action_quit(self) -> None:
        self.keeper.quit(0 if self.session is not None else 1)

    def action_help_quit(self) -> None:
        """ctrl+c. While a preset is opening it quits as ctrl+q does (whoever presses it is
        waiting on the load and wants out); otherwise Textual's reminder that ctrl+q quits."""
        if self.preset_pending:
            self.action_quit()
        else:
            super().action_help_quit()

    def action_save_preset(self) -> None:
        self.keeper.save()

    def action_sgd_step(self) -> None:
        self._apply(self.session.step)

    def action_undo(self) -> None:
        if self.session.can_undo:
            label = self.session.undo_stack[-1].label
            self._apply(self.session.undo, report=lambda: f"undo: {label}")
        else:
            self.query_one(AppHeader).show_status("nothing to undo", error=True)

    def action_redo(self) -> None:
        if self.session.can_redo:
            self._apply(self.session.redo, report=lambda: f"redo: {self._last_label()}")
        else:
            self.query_one(AppHeader).show_status("nothing to redo", error=True)

    def action_reset_all(self) -> None:
        self._apply(self.session.reset_all, report=lambda: "reset every leaf and the loss history")

    def action_learning_rate(self) -> None:
        from backprop_tui.engine import EditError
        from backprop_tui.engine.numbers import parse_number
        from backprop_tui.ui.format import fmt

        session = self.session

        def submit(text: str) -> str | None:
            try:
                session.set_learning_rate(parse_number(text))
            except EditError as exc:
                return str(exc)
            return None

        def done(result: str | None) -> None:
            if result is not None:
                self._refresh_panels()
                self._report(f"learning rate {fmt(session.learning_rate)}")

        self.push_screen(
            PromptScreen("Learning rate", "used by s (one SGD step); a positive number, e.g. 0.01",
                         fmt(session.learning_rate), submit, self.cursor_blink),
            done,
        )

    def action_open_file(self) -> None:
        if not self.file_policy.files_allowed:
            self.query_one(AppHeader).show_status(self.file_policy.refusal("opening files"), error=True)
            return

        def done(path: str | None) -> None:
            if path:
                try:
                    self.open_preset(self.file_policy.checked(path.strip()))
                except PathRefused as exc:
                    self.query_one(AppHeader).show_status(str(exc), error=True)

        def submit(text: str) -> str | None:
            return "enter the path of a preset .toml file" if not text.strip() else None

        self.push_screen(
            PromptScreen("Open a preset file", "the path of a .toml preset (see docs/presets.md)", "", submit,
                         self.cursor_blink),
            done,
        )

    def preset_titles(self) -> list[tuple[str, str]]:
        """(name, title) of every bundled preset, read once."""
        if self._preset_titles is None:
            from backprop_tui.engine import BackpropError, bundled_presets, load_preset

            titles = []
            for name, path in bundled_presets().items():
                try:
                    titles.append((name, load_preset(path).title))
                except BackpropError as exc:
                    titles.append((name, f"(cannot load: {exc})"))
            self._preset_titles = titles
        return self._preset_titles

    def action_pick_preset(self) -> None:
        if self.session is None and self.preset_pending:
            return  # still importing torch: the picker reads the presets through the engine

        def done(name: str | None) -> None:
            if name:
                self.open_preset(name)

        current = None if self.session is None else self.session.preset.name
        self.push_screen(PresetPicker(self.preset_titles(), current), done)

    def action_about(self) -> None:
        from backprop_tui.ui.screens.about import AboutScreen

        if self.session is not None:
            preset = self.session.preset
            self.push_screen(AboutScreen(preset.name, preset.title, preset.description))

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.binding_groups()))

    # ------------------------------------------------------------ seeing the function, taking it out

    def open_session(self, session: "Session") -> None:
        """Open a session made elsewhere (your own expression) the way a loaded preset opens."""
        self._load_generation += 1
        self._pending_spec = None  # made here: nothing to open it again by
        self.post_message(SessionReady(session, self._load_generation))

    def action_loss_slice(self) -> None:
        from backprop_tui.ui.screens.loss_slice import open_loss_slice

        if self.session is not None:
            open_loss_slice(self)

    def action_train(self) -> None:
        from backprop_tui.ui.screens.training import TrainingScreen

        if self.session is not None:
            self.push_screen(TrainingScreen(self.session, self.cursor_blink, lambda label: (
                self._refresh_panels(), self._report(label))))

    def action_custom_expression(self) -> None:
        from backprop_tui.ui.screens.custom_expression import CustomExpressionScreen

        if self.session is None and self.preset_pending:
            return  # still importing torch

        def done(session: "Session | None") -> None:
            if session is not None:
                self.open_session(session)

        self.push_screen(CustomExpressionScreen(cursor_blink=self.cursor_blink), done)

    def action_export(self) -> None:
        from backprop_tui.ui.screens.export import open_export

        open_export(self, lambda written: written and self.query_one(AppHeader).show_status(written))

    # ------------------------------------------------------------ teaching: checking gradients, the passes

    def action_finite_differences(self) -> None:
        teaching.open_finite_differences(self)

    def action_your_gradient(self) -> None:
        teaching.open_your_gradient(self)

    def action_whole_tensor(self) -> None:
        teaching.open_whole_tensor(self)

    def action_step_through(self, mode: str) -> None:
        teaching.open_step_through(self, mode)

    def action_exercise(self) -> None:
        """Backprop by hand: derive every gradient of the open preset as an expression."""
        from backprop_tui.ui.screens.exercise import ExerciseScreen

        if self.session is not None:
            self.push_screen(ExerciseScreen(self.session, self.cursor_blink), lambda _: self._refresh_panels())

    def binding_groups(self) -> list[tuple[str, list[Binding]]]:
        """Every binding of the app and its panels, for the help screen and the README."""
        return [
            ("Everywhere", list(self.BINDINGS)),
            ("Graph panel", list(GraphPanel.BINDINGS) + list(GraphView.BINDINGS)),
            ("Weights panel", list(LeafList.BINDINGS) + list(ElementGrid.BINDINGS) + list(WeightEditor.BINDINGS)
             + list(EditInput.BINDINGS)),
            ("Focus", [Binding("tab", "focus_next", "Next panel", id="screen.focus_next",
                               tooltip="Move to the next panel (graph, leaves, grid, inspector)."),
                       Binding("shift+tab", "focus_previous", "Previous panel", id="screen.focus_previous",
                               tooltip="Move to the previous panel.")]),
        ]

    def watch_theme(self, theme: str) -> None:
        if getattr(self, "remember_theme", False):  # not while __init__ sets the first theme
            from backprop_tui.ui.settings import remember_theme

            self.run_worker(partial(remember_theme, theme), thread=True, group="settings", exit_on_error=False)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if self.session is not None:
            yield SystemCommand("Backprop by hand", "Derive every gradient of this preset yourself, as an expression;"
                                " autograd checks each one and says why a wrong one is wrong.", self.action_exercise)
            for name, title in self.preset_titles():
                yield SystemCommand(f"Open preset: {name}", title, partial(self.open_preset, name))
        # every app-wide key, by its name, key and tooltip (as the README's table lists them)
        for binding in self.BINDINGS:
            if binding.action in ("quit", "command_palette") or self.check_action(binding.action, ()) is not True:
                continue
            key = binding.key_display or binding.key.split(",")[0]
            yield SystemCommand(f"{binding.description} ({key})", binding.tooltip,
                                partial(self.call_later, self.run_action, binding.action))


def run_app(preset: str = DEFAULT_PRESET, exercise: bool = False, autosave: bool | None = None) -> int:
    """Run the explorer on a bundled preset name or a file path; return the exit code.
    `exercise`: open the backprop exercise once the preset is in; `autosave`: see BackpropApp."""
    from backprop_tui.process import explorer_settings, quiet_warnings, torch_threads

    with quiet_warnings(), torch_threads(1), explorer_settings():
        app = BackpropApp(preset, exercise=exercise, remember_theme=True, autosave=autosave)
        result = app.run()
    if app.return_code is not None:
        return app.return_code
    return int(result or 0)


def _spec_key(spec: str) -> str:
    """One key for the same preset however it was asked for: a bundled name as is, a path resolved."""
    if "/" not in spec and not spec.endswith(".toml"):
        return spec
    try:
        return str(Path(spec).expanduser().resolve())
    except (OSError, RuntimeError):  # a loop of symlinks, no home directory: keep the words
        return spec
