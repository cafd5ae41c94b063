"""The exercise on one state of a preset: which gradients are asked, in which order, and
the check of one answer against autograd."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

import numpy as np
import torch

from backprop_tui.engine.exercise.answer import AnswerError, evaluate_answer, module_caller, parse_answer
from backprop_tui.engine.exercise.diagnose import Consumer, Context, diagnose
from backprop_tui.engine.exercise.progress import Progress
from backprop_tui.engine.exercise.verdict import APPROXIMATE, ERROR, EXACT, WRONG, Verdict, compare
from backprop_tui.engine.preset import Preset
from backprop_tui.engine.snapshot import Snapshot


@dataclass(frozen=True)
class Checked:
    """A verdict and, when the answer computed, its tensor (what d<node> means downstream)."""

    verdict: Verdict
    value: torch.Tensor | None


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array, copy=True))


def backward_order(preset: Preset, snapshot: Snapshot) -> tuple[str, ...]:
    """Every node with a gradient except the output, from the output back: each step after
    all its consumers, each leaf right after the last of its consumers to be reached."""
    has_grad = {n.name for n in snapshot.nodes if n.grad is not None and n.name != preset.output}
    order: list[str] = []
    placed: set[str] = set()
    for step in reversed(preset.steps):
        if step.name in has_grad:
            order.append(step.name)
            placed.add(step.name)
        for name in snapshot.node(step.name).inputs:
            node = snapshot.node(name)
            if node.is_leaf and name in has_grad and name not in placed:
                if all(c in placed or c == preset.output or c == step.name for c in node.consumers):
                    order.append(name)
                    placed.add(name)
    order.extend(name for name in (n.name for n in snapshot.nodes) if name in has_grad and name not in placed)
    return tuple(order)


class Exercise:
    """The answers' world for one snapshot: forward values, autograd's gradients, the order."""

    def __init__(self, preset: Preset, snapshot: Snapshot):
        self.preset = preset
        self.snapshot = snapshot
        self.values = {n.name: _tensor(n.value) for n in snapshot.nodes}
        self.grads = {n.name: _tensor(n.grad) for n in snapshot.nodes if n.grad is not None}
        self.order = backward_order(preset, snapshot)
        self._steps = {s.name: s for s in preset.steps}
        self.module_specs = {m.name: m for m in preset.modules}
        self.modules = frozenset(self.module_specs)
        self.extras = {e.name: e for e in preset.exercises}

    def check(
        self,
        node: str,
        text: str,
        accepted: Mapping[str, torch.Tensor],
        allowed: tuple[str, ...] | None = None,
        label: str = "",
    ) -> Checked:
        """makemore's cmp of the answer against autograd's gradient of `node`, with a
        diagnosis when it is wrong. `accepted` holds the learner's accepted gradients."""
        if node not in self.grads:
            raise AnswerError(f"{node} has no gradient to derive")
        expected = self.grads[node]
        shape = tuple(expected.shape)
        try:
            answer = parse_answer(node, text, self.values, set(self.grads), self.modules, allowed)
        except AnswerError as exc:
            return Checked(Verdict(node, str(text), ERROR, shape, diagnosis=str(exc), label=label), None)
        try:
            value = evaluate_answer(answer, self.values, accepted, self.module_specs)
        except AnswerError as exc:
            verdict = Verdict(node, answer.text, ERROR, shape, grads_used=answer.grads_used, diagnosis=str(exc))
            return Checked(replace(verdict, label=label), None)
        result = compare(value, expected)
        status = EXACT if result.exact else APPROXIMATE if result.approximate else WRONG
        diagnosis = "" if status != WRONG else diagnose(self.context(node), value)
        verdict = Verdict(
            node, answer.text, status, shape, tuple(value.shape), result.exact, result.approximate,
            result.maxdiff, answer.grads_used, diagnosis, label,
        )
        return Checked(verdict, value)

    def context(self, node: str) -> Context:
        consumers = tuple(
            Consumer(c, self._steps[c].expr.text, self._steps[c].expr.tree)
            for c in self.snapshot.node(node).consumers
            if c in self._steps
        )
        specs = self.module_specs

        def call_module(env: Mapping[str, torch.Tensor], name: str, x: torch.Tensor) -> torch.Tensor:
            return module_caller(specs, env, RuntimeError)(name, x)

        return Context(node, self.values[node], self.grads[node], consumers, self.values, self.grads, call_module)


def check_extra(exercise: Exercise, name: str, text: str, accepted: Mapping[str, torch.Tensor]) -> Checked:
    """One of the preset's [[exercises]]: its node's gradient from its allowed names only."""
    spec = exercise.extras[name]
    if spec.node not in exercise.grads:
        shape = tuple(exercise.values[spec.node].shape)
        verdict = Verdict(spec.node, text, ERROR, shape, diagnosis=f"{spec.node} has no gradient", label=name)
        return Checked(verdict, None)
    return exercise.check(spec.node, text, accepted, allowed=spec.allowed, label=name)


def recheck(exercise: Exercise, progress: Progress) -> tuple[Progress, dict[str, torch.Tensor]]:
    """Every recorded answer checked again on this exercise's values (after an edit, say), in
    backward order, each with the learner's accepted gradients; and those gradients."""
    accepted: dict[str, torch.Tensor] = {}
    for node in exercise.order:
        entry = progress.get(node)
        if not entry.answer:
            continue
        checked = exercise.check(node, entry.answer, accepted)
        progress = progress.with_verdict(checked.verdict)
        if checked.verdict.accepted and checked.value is not None:
            accepted[node] = checked.value
    for name in exercise.extras:
        if progress.get(name).answer:
            progress = progress.with_verdict(check_extra(exercise, name, progress.get(name).answer, accepted).verdict)
    return progress, accepted


@dataclass(frozen=True)
class Submitted:
    """One answer taken in: its check, the progress with it, and the accepted gradients after it."""

    checked: Checked
    progress: Progress
    accepted: dict[str, torch.Tensor]


def submit(
    exercise: Exercise, progress: Progress, accepted: Mapping[str, torch.Tensor], key: str, text: str
) -> Submitted:
    """Check `text` as the answer for `key` (a node, or one of the preset's [[exercises]]) with the
    learner's other accepted gradients, and the progress that records it. Answers that used the
    old answer for `key` are checked again with the new one."""
    others = {k: v for k, v in accepted.items() if k != key}
    if key in exercise.extras:
        checked = check_extra(exercise, key, text, others)
    else:
        checked = exercise.check(key, text, others)
    progress = progress.with_verdict(checked.verdict)
    if any(key in progress.get(other).grads_used for other, _ in progress.entries if other != key):
        progress, now = recheck(exercise, progress)
        return Submitted(checked, progress, now)
    now = dict(accepted)
    if key not in exercise.extras:
        now.pop(key, None)
        if checked.verdict.accepted and checked.value is not None:
            now[key] = checked.value
    return Submitted(checked, progress, now)
