"""Backprop by hand: every gradient of the preset, derived by the learner as an expression.

The nodes come in backward order from the output (engine.exercise.backward_order), each
with its status (to do, wrong, approximate, exact), the hints asked for, the maxdiff and
the answer. `y` (or enter) types the answer for the highlighted node's whole tensor; the
engine judges it with makemore's cmp and says why a wrong answer is wrong. Progress lives
in the Session (session.exercise), so undo, redo and autosave keep it.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

if TYPE_CHECKING:
    from backprop_tui.engine import Session

MARK = {"exact": ("✓", "bold green"), "approximate": ("≈", "bold yellow"), "wrong": ("✗", "bold red"),
        "error": ("!", "bold red"), "to do": ("·", "dim")}
ANSWER_WIDTH = 34


class ExerciseScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close", id="exercise.close", tooltip="Back to the explorer; progress is kept."),
        Binding("y,enter", "answer", "Your gradient", id="exercise.answer",
                tooltip="Type the gradient of the output with respect to the highlighted node, as an expression."),
        Binding("h", "hint", "Hint", id="exercise.hint",
                tooltip="The local derivative of each consumer of the node, as the inspector shows it (recorded)."),
        Binding("n", "skip", "Skip", id="exercise.skip", tooltip="Leave this one for later: the next one to do."),
        Binding("ctrl+z", "undo", "Undo", id="exercise.undo", tooltip="Undo the last answer, hint or edit."),
        Binding("ctrl+y", "redo", "Redo", id="exercise.redo", show=False, tooltip="Redo what was undone."),
    ]

    DEFAULT_CSS = """
    ExerciseScreen #ex-title { height: 1; padding: 0 1; background: $boost; }
    ExerciseScreen #ex-table { height: 1fr; }
    ExerciseScreen #ex-detail { height: auto; max-height: 9; padding: 0 1; border-top: solid $accent; }
    ExerciseScreen #ex-input { display: none; }
    ExerciseScreen #ex-input.-open { display: block; }
    """

    def __init__(self, session: "Session", cursor_blink: bool = True) -> None:
        super().__init__()
        self.session = session
        self.cursor_blink = cursor_blink
        self.exercise = None
        self.hints: dict[str, tuple[str, ...]] = {}  # shown this time, by node

    # ------------------------------------------------------------ layout

    def compose(self):
        with Vertical(id="ex-box"):
            yield Static(id="ex-title")
            yield DataTable(id="ex-table", cursor_type="row", zebra_stripes=False)
            yield Static(id="ex-detail")
            yield Input(id="ex-input", placeholder="e.g. dlogprobs / probs   (esc: cancel)")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in (("mark", " "), ("name", "gradient"), ("shape", "shape"), ("status", "status"),
                           ("maxdiff", "maxdiff"), ("hints", "hints"), ("answer", "answer")):
            table.add_column(label, key=key)
        self.query_one(Input).cursor_blink = self.cursor_blink
        self._rebuild()
        self._go(self._progress.next_to_do(self.rows))
        table.focus()

    # ------------------------------------------------------------ state

    @property
    def _progress(self):
        return self.session.exercise

    @property
    def rows(self) -> tuple[str, ...]:
        """The nodes in backward order, then the preset's own exercises by name."""
        return self.exercise.order + tuple(self.exercise.extras)

    def _rebuild(self) -> None:
        """The exercise on the session's current values; every answer checked again on them."""
        from backprop_tui.engine.exercise import Exercise
        from backprop_tui.engine.exercise.exercise import recheck
        from backprop_tui.engine.exercise.progress import Progress

        self.exercise = Exercise(self.session.preset, self.session.snapshot)
        rechecked, self.accepted = recheck(self.exercise, self._progress or Progress())
        self.session.exercise = rechecked  # what the values of the moment make of the answers
        self._fill()

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        for key in self.rows:
            table.add_row(*self._cells(key), key=key)
        if self.rows:
            table.move_cursor(row=min(max(cursor, 0), len(self.rows) - 1), animate=False)
        self._title()
        self._detail()

    def _cells(self, key: str) -> list[Text]:
        from backprop_tui.engine.numbers import fmt

        entry = self._progress.get(key)
        node = self.exercise.extras[key].node if key in self.exercise.extras else key
        mark, style = MARK[entry.status]
        answer = entry.answer if len(entry.answer) <= ANSWER_WIDTH else entry.answer[: ANSWER_WIDTH - 1] + "…"
        return [
            Text(mark, style=style),
            Text(key if key in self.exercise.extras else f"d{key}", style="bold" if entry.accepted else ""),
            Text(str(list(self.exercise.values[node].shape)), style="dim"),
            Text(entry.status, style=style),
            Text("" if entry.maxdiff is None else fmt(entry.maxdiff, 2)),
            Text(str(entry.hints) if entry.hints else ""),
            Text(answer),
        ]

    def _title(self) -> None:
        done = self._progress.done(self.exercise.order)
        upcoming = self._progress.next_to_do(self.exercise.order)
        text = Text.assemble(("Backprop by hand  ", "bold"), (self.session.preset.name, "bold cyan"))
        text.append(f" · {done} of {len(self.exercise.order)} done")
        text.append(" · next: " + (f"d{upcoming}" if upcoming else "none, all derived"), style="bold")
        self.query_one("#ex-title", Static).update(text)

    @property
    def current(self) -> str | None:
        table = self.query_one(DataTable)
        rows = self.rows
        return rows[table.cursor_row] if rows and 0 <= table.cursor_row < len(rows) else None

    def _go(self, key: str | None) -> None:
        if key is not None and key in self.rows:
            self.query_one(DataTable).move_cursor(row=self.rows.index(key), animate=False)
        self._detail()

    def _detail(self) -> None:
        key = self.current
        if key is None:
            return
        extra = self.exercise.extras.get(key)
        node = extra.node if extra is not None else key
        entry = self._progress.get(key)
        out = self.session.preset.output
        lines = Text()
        if extra is not None:
            lines.append(f"{key}: ∂{out}/∂{node} from {', '.join(extra.allowed)} only", style="bold")
            if extra.prompt.strip():
                lines.append("\n" + " ".join(extra.prompt.split()), style="dim")
        else:
            step = self.session.snapshot.node(node)
            lines.append(f"d{node} = ∂{out}/∂{node}", style="bold")
            if step.expr:
                lines.append(f" · {node} = {step.expr}", style="dim")
            if step.consumers:
                lines.append(f" · used by {', '.join(step.consumers)}", style="dim")
        if entry.answer:
            lines.append(f"\nd{node} = {entry.answer}")
            if entry.grads_used:
                lines.append(f" · uses your {', '.join('d' + g for g in entry.grads_used)}", style="dim")
            verdict = self.verdicts.get(key)
            if verdict is not None:
                lines.append("\n" + verdict.line().split("|", 1)[1].strip(), style=MARK[verdict.status][1])
        for line in self.hints.get(key, ()):
            lines.append("\nhint: " + line, style="italic")
        self.query_one("#ex-detail", Static).update(lines)

    @property
    def verdicts(self):
        """Each answered node's verdict on the current values (computed on demand)."""
        from backprop_tui.engine.exercise.exercise import check_extra

        found = {}
        key = self.current
        entry = self._progress.get(key) if key else None
        if key and entry and entry.answer:
            if key in self.exercise.extras:
                found[key] = check_extra(self.exercise, key, entry.answer, self.accepted).verdict
            else:
                accepted = {k: v for k, v in self.accepted.items() if k != key}
                found[key] = self.exercise.check(key, entry.answer, accepted).verdict
        return found

    # ------------------------------------------------------------ actions

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_answer()

    def action_answer(self) -> None:
        key = self.current
        if key is None:
            return
        field = self.query_one(Input)
        field.value = self._progress.get(key).answer
        field.add_class("-open")
        field.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit(self.current, event.value)

    def submit(self, key: str, text: str) -> None:
        """Check `text` as the answer for `key` and record the new progress (undoable)."""
        from backprop_tui.engine.exercise.exercise import submit

        if not text.strip():
            return
        taken = submit(self.exercise, self._progress, self.accepted, key, text)
        self.accepted = taken.accepted
        verdict = taken.checked.verdict
        self.session.record_exercise(taken.progress, f"answer {verdict.label or 'd' + key}: {verdict.status}")
        self.app.keeper.changed()
        self._close_input()
        self._fill()
        self._go(self._progress.next_to_do(self.rows, after=key) if verdict.accepted else key)

    def _close_input(self) -> None:
        field = self.query_one(Input)
        field.remove_class("-open")
        self.query_one(DataTable).focus()

    def action_hint(self) -> None:
        """Work the hint out in a thread (hundreds of ms on a big preset), then show and record it."""
        from backprop_tui.engine.analysis.live import FrozenState

        key = self.current
        if key is None:
            return
        node = self.exercise.extras[key].node if key in self.exercise.extras else key
        self.hints[key] = ("working it out…",)
        self._detail()
        self.run_worker(partial(self._work_hint, FrozenState.of(self.session), key, node), thread=True,
                        group="hint", exclusive=True, exit_on_error=False)

    def _work_hint(self, state, key: str, node: str) -> None:
        from backprop_tui.engine import BackpropError
        from backprop_tui.engine.exercise.hint import hint

        try:
            lines = hint(state, node)
        except BackpropError as exc:
            lines = (str(exc),)
        self.app.call_from_thread(self._hint_ready, key, lines)

    def _hint_ready(self, key: str, lines: tuple[str, ...]) -> None:
        if not self.is_attached:
            return
        self.hints[key] = lines
        self.session.record_exercise(self._progress.with_hint(key), f"hint for {key}")
        self.app.keeper.changed()
        self._fill()

    def action_skip(self) -> None:
        self._go(self._progress.next_to_do(self.rows, after=self.current))

    def action_undo(self) -> None:
        self.app.action_undo()
        self._rebuild()

    def action_redo(self) -> None:
        self.app.action_redo()
        self._rebuild()

    def action_close(self) -> None:
        if self.query_one(Input).has_class("-open"):
            self._close_input()
            return
        self.dismiss(None)
