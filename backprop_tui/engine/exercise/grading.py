"""Checking a whole answer file, as a teacher's autograder does: every answer in an order
where the gradients it uses are decided first, one cmp line each, and a summary."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from backprop_tui.engine import limits
from backprop_tui.engine.exercise.answer import AnswerError, parse_answer
from backprop_tui.engine.exercise.exercise import Exercise, check_extra
from backprop_tui.engine.exercise.progress import Progress
from backprop_tui.engine.exercise.verdict import APPROXIMATE, ERROR, EXACT, Verdict
from backprop_tui.engine.files import FileRefused, read_limited


EXTRAS = "exercises"  # the answer file's table of a preset's [[exercises]]


@dataclass(frozen=True)
class Report:
    verdicts: tuple[Verdict, ...]
    missing: tuple[str, ...]  # nodes of the exercise with no answer

    @property
    def passed(self) -> bool:
        return not self.missing and all(v.accepted for v in self.verdicts)

    def summary(self) -> str:
        total = len(self.verdicts) + len(self.missing)
        right = sum(v.accepted for v in self.verdicts)
        exact = sum(v.status == EXACT for v in self.verdicts)
        approx = sum(v.status == APPROXIMATE for v in self.verdicts)
        text = f"{right} of {total} right ({exact} exact, {approx} approximate)"
        wrong = [v.label or f"d{v.node}" for v in self.verdicts if not v.accepted]
        if wrong:
            text += f"; not right: {', '.join(wrong)}"
        if self.missing:
            text += f"; missing: {', '.join('d' + m for m in self.missing)}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "summary": self.summary(),
            "answers": [v.to_json() for v in self.verdicts],
            "missing": [f"d{m}" for m in self.missing],
        }


def read_answer_file(path: str | Path) -> dict[str, Any]:
    """The TOML document of an answer file; AnswerError with one line for anything unusable."""
    try:
        data = read_limited(path, limits.MAX_FILE_BYTES)
    except FileRefused as exc:
        raise AnswerError(f"{path}: {exc}") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise AnswerError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise AnswerError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise AnswerError(f"{path}: nests too deeply") from None


def answers_from(doc: Mapping[str, Any], exercise: Exercise, source: str = "answers") -> dict[str, str]:
    """{node: text} from `dname = "..."` keys; AnswerError naming the first bad key."""
    answers: dict[str, str] = {}
    for key, text in doc.items():
        if key == EXTRAS:
            continue
        node = key[1:] if key.startswith("d") else None
        if node not in exercise.grads or node == exercise.preset.output:
            raise AnswerError(
                f"{source}: {key!r} is not the gradient of a node of {exercise.preset.name} (write d + the node's name)"
            )
        if not isinstance(text, str):
            raise AnswerError(f"{source}: {key} must be a string holding an expression")
        answers[node] = text
    return answers


def extras_from(doc: Mapping[str, Any], exercise: Exercise, source: str = "answers") -> dict[str, str]:
    """{exercise name: text} from the [exercises] table of an answer file."""
    table = doc.get(EXTRAS, {})
    if not isinstance(table, dict):
        raise AnswerError(f"{source}: [{EXTRAS}] must be a table of name = \"answer\"")
    for name, text in table.items():
        if name not in exercise.extras:
            names = ", ".join(exercise.extras) or "none"
            raise AnswerError(f"{source}: {name!r} is not an exercise of {exercise.preset.name} (exercises: {names})")
        if not isinstance(text, str):
            raise AnswerError(f"{source}: {EXTRAS}.{name} must be a string holding an expression")
    return dict(table)


def grade(exercise: Exercise, answers: Mapping[str, str], extras: Mapping[str, str] | None = None) -> Report:
    """Check every answer; an answer using dX is checked after dX, with the learner's dX."""
    parsed = {}
    verdicts: dict[str, Verdict] = {}
    for node, text in answers.items():
        try:
            parsed[node] = parse_answer(node, text, exercise.values, set(exercise.grads), exercise.modules)
        except AnswerError as exc:
            verdicts[node] = Verdict(node, text, ERROR, tuple(exercise.grads[node].shape), diagnosis=str(exc))
    accepted: dict[str, torch.Tensor] = {}
    pending = [node for node in exercise.order if node in parsed]
    while pending:
        ready = [n for n in pending if all(d in verdicts or d not in answers for d in parsed[n].grads_used)]
        if not ready:  # the answers left use each other in a circle
            for node in pending:
                uses = ", ".join(f"d{d}" for d in parsed[node].grads_used if d in pending)
                verdicts[node] = Verdict(
                    node, parsed[node].text, ERROR, tuple(exercise.grads[node].shape),
                    diagnosis=f"the answer for d{node} uses {uses}, which use(s) d{node} in turn",
                )
            break
        for node in ready:
            checked = exercise.check(node, answers[node], accepted)
            verdicts[node] = checked.verdict
            if checked.verdict.accepted and checked.value is not None:
                accepted[node] = checked.value
            pending.remove(node)
    ordered = tuple(verdicts[n] for n in exercise.order if n in verdicts)
    ordered += tuple(check_extra(exercise, name, text, accepted).verdict for name, text in (extras or {}).items())
    missing = tuple(n for n in exercise.order if n not in answers)
    return Report(ordered, missing)


def progress_of(report: Report, progress: Progress | None = None) -> Progress:
    """The progress a graded file amounts to (hints kept from `progress`)."""
    progress = progress or Progress()
    for verdict in report.verdicts:
        progress = progress.with_verdict(verdict)
    return progress


def saved_progress(exercise: Exercise) -> Progress | None:
    """The progress a preset's own [answers] amount to, judged now; None if it has none."""
    if not exercise.preset.answers:
        return None
    answers = {key: text for key, text in exercise.preset.answers if key in exercise.grads}
    extras = {key: text for key, text in exercise.preset.answers if key in exercise.extras}
    return progress_of(grade(exercise, answers, extras))


def answers_table(answers: Iterable[tuple[str, str]], exercise_names: Iterable[str]) -> dict[str, Any]:
    """(node or exercise name, answer) pairs as an answer file's table, what a saved preset's
    [answers] holds: `dname = "..."`, and the preset's own exercises under [answers.exercises]."""
    names = set(exercise_names)
    table: dict[str, Any] = {f"d{key}": text for key, text in answers if text and key not in names}
    extras = {key: text for key, text in answers if text and key in names}
    if extras:
        table[EXTRAS] = extras
    return table
