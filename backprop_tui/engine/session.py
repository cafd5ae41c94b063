"""The state a user changes: leaf values, requires_grad flags, undo/redo and SGD history.

Every edit goes through `Session`, which recomputes through the engine and returns the
new Snapshot. A refused edit raises EditError and changes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from backprop_tui.engine.errors import ComputeError, EditError
from backprop_tui.engine.graph import Graph
from backprop_tui.engine.limits import MAX_HISTORY
from backprop_tui.engine.numbers import FLOAT32_MAX, fmt, short_number
from backprop_tui.engine.preset import Preset
from backprop_tui.engine.snapshot import Snapshot

MAX_HISTORY_BYTES = 64 * 2**20  # tensors held by undo entries (a tensor two entries share counts twice)

Index = tuple[int, ...]


@dataclass(frozen=True)
class Change:
    """One leaf's value (one element, or the whole tensor) and requires_grad, before and after."""

    name: str
    index: Index | None  # None: the whole tensor
    old: torch.Tensor | float
    new: torch.Tensor | float
    old_rg: bool
    new_rg: bool


@dataclass(frozen=True)
class Entry:
    """One undoable edit."""

    label: str
    changes: tuple[Change, ...]
    losses: tuple[float, ...] = ()  # what SGD appended to the loss history
    steps: int = 0  # SGD steps this edit took
    cleared: tuple[tuple[float, ...], int] | None = None  # the history and step count a reset cleared
    exercise: tuple[Any, Any] | None = None  # exercise progress (before, after): plain data, see engine/exercise


def _as_stored(value: float, dtype: torch.dtype) -> float:
    """`value` as the tensor will hold it (rounded to float32), as a Python float."""
    if dtype == torch.float32:
        return float(np.float32(value))  # the same rounding as torch, at a tenth of the cost
    return float(torch.tensor(value, dtype=dtype).item())


def _entry_bytes(entry: Entry) -> int:
    return sum(
        t.element_size() * t.nelement()
        for change in entry.changes
        for t in (change.old, change.new)
        if isinstance(t, torch.Tensor)
    )


def format_index(name: str, index: Index | None) -> str:
    return name if not index else f"{name}[{','.join(map(str, index))}]"


class Session:
    def __init__(self, preset: Preset, graph: Graph | None = None):
        self.preset = preset
        self.graph = graph or Graph(preset)
        self.values = self.graph.initial_values()
        self.requires_grad = self.graph.initial_requires_grad()
        self.undo_stack: list[Entry] = []
        self.redo_stack: list[Entry] = []
        self._history_bytes = 0  # of the tensors held by undo_stack's entries
        self._written: dict[str, tuple[torch.Tensor, torch.Tensor, int]] = {}  # see _history_copy
        self.sgd_losses: list[float] = []
        self.steps_taken = 0
        self._saved_top: Entry | None = None
        self.snapshot: Snapshot = self.graph.compute(self.values, self.requires_grad)
        self.previous: Snapshot | None = None
        self.learning_rate = preset.learning_rate
        self.exercise: Any = None  # the exercise's progress (engine.exercise.Progress), None before one starts

    # ------------------------------------------------------------ queries

    @property
    def loss_history(self) -> list[float]:
        """Loss before the first SGD step, then after each one; [current loss] before any step."""
        return list(self.sgd_losses) if self.sgd_losses else [self.snapshot.loss]

    @property
    def can_undo(self) -> bool:
        return bool(self.undo_stack)

    @property
    def can_redo(self) -> bool:
        return bool(self.redo_stack)

    @property
    def dirty(self) -> bool:
        """True when the state differs from the preset as loaded or last saved."""
        return self._last_value_edit() is not self._saved_top

    def mark_saved(self) -> None:
        self._saved_top = self._last_value_edit()

    def _last_value_edit(self) -> Entry | None:
        """The newest entry that changed values: an exercise's answers are no edit a preset file saves."""
        return next((entry for entry in reversed(self.undo_stack) if entry.changes or entry.exercise is None), None)

    def leaf_value(self, name: str, index: Index = ()) -> float:
        return float(self.values[name][index]) if index else float(self.values[name].reshape(-1)[0])

    # ------------------------------------------------------------ edits

    def set_element(self, name: str, index: Index, value: float) -> Snapshot:
        tensor = self._leaf(name)
        index = self._check_index(name, tensor, tuple(index))
        where = format_index(name, index)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise EditError(f"{where}: {value!r} is not a number")
        if abs(value) > FLOAT32_MAX or not math.isfinite(abs(value)):  # abs() first: a huge int
            raise EditError(f"{where}: {short_number(value)} is not a finite number in float32 range")
        if not tensor.is_floating_point():
            if value != int(value):
                raise EditError(f"{where}: holds class indices; {value} is not a whole number")
            if abs(value) > 2**62:
                raise EditError(f"{where}: {short_number(value)} is out of range for a class index")
        old = tensor[index].item()
        stored = _as_stored(value, tensor.dtype)
        rg = self.requires_grad[name]
        label = f"{format_index(name, index)} = {fmt(stored)}"
        return self._commit(Entry(label, (Change(name, index, old, stored, rg, rg),)))

    def nudge(self, name: str, index: Index, delta: float) -> Snapshot:
        return self.set_element(name, index, self.values[name][tuple(index)].item() + delta)

    def toggle_requires_grad(self, name: str) -> Snapshot:
        tensor = self._leaf(name)
        if not tensor.is_floating_point():
            raise EditError(f"{name} holds class indices (int); only float tensors can require grad")
        rg = self.requires_grad[name]
        state = "off" if rg else "on"
        return self._commit(
            Entry(f"requires_grad of {name} {state}", (Change(name, None, tensor.clone(), tensor.clone(), rg, not rg),))
        )

    def reset_leaf(self, name: str) -> Snapshot:
        self._leaf(name)
        change = self._reset_change(name)
        return self._commit(Entry(f"reset {name}", (change,)))

    def reset_all(self) -> Snapshot:
        """Every leaf back to the preset, and the step count and loss history back to none (undoable)."""
        changes = tuple(self._reset_change(leaf.name) for leaf in self.preset.leaves)
        snapshot = self._commit(Entry("reset all", changes, cleared=(tuple(self.sgd_losses), self.steps_taken)))
        self.set_history([], 0)
        return snapshot

    def step(self, lr: float | None = None) -> Snapshot:
        """One SGD step: θ ← θ − lr·∇θ for every leaf that requires grad."""
        lr = self.learning_rate if lr is None else lr
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            raise EditError(f"learning rate must be a positive finite number, got {lr!r}")
        changes = []
        for node in self.snapshot.leaves:
            if node.grad is None or not self.requires_grad[node.name]:
                continue
            old = self._history_copy(node.name)
            new = old - lr * torch.from_numpy(node.grad.copy())
            rg = self.requires_grad[node.name]
            changes.append(Change(node.name, None, old, new, rg, rg))
        if not changes:
            raise EditError(f"{self.snapshot.no_gradient_reason()}: there is nothing for SGD to update")
        before = () if self._history_is_current() else (self.snapshot.loss,)
        entry = Entry(f"SGD step (lr {fmt(lr)})", tuple(changes))
        snapshot = self._apply(entry, forward=True)
        losses = before + (snapshot.loss,)
        self._push(Entry(entry.label, entry.changes, losses, steps=1))
        self.sgd_losses.extend(losses)
        self.steps_taken += 1
        return snapshot

    def apply_training(self, values: dict[str, torch.Tensor], losses: list[float], steps: int, label: str) -> Snapshot:
        """A training run's result as one undoable edit that carries its losses and steps.

        `losses` holds the loss before the first step, then one after each step.
        """
        if steps < 1 or len(losses) != steps + 1:
            raise EditError("a training run needs its loss before the first step and one after each")
        changes = self._state_changes(values, {})
        entry = Entry(label, changes)
        self._apply(entry, forward=True)
        recorded = tuple(losses[1:] if self._history_is_current() else losses)
        self._push(Entry(label, changes, recorded, steps=steps))
        self.sgd_losses.extend(recorded)
        self.steps_taken += steps
        return self.snapshot

    def apply_state(self, values: dict[str, torch.Tensor], requires_grad: dict[str, bool], label: str) -> Snapshot:
        """Set many leaves at once as one undoable edit (restoring a saved session, say)."""
        return self._commit(Entry(label, self._state_changes(values, requires_grad)))

    def _state_changes(self, values: dict[str, torch.Tensor], requires_grad: dict[str, bool]) -> tuple[Change, ...]:
        changes = []
        for name in dict.fromkeys([*values, *requires_grad]):
            tensor = self._leaf(name)
            new = values.get(name, tensor)
            if new.shape != tensor.shape or new.dtype != tensor.dtype:
                raise EditError(
                    f"{name}: expected {list(tensor.shape)} {tensor.dtype}, got {list(new.shape)} {new.dtype}"
                )
            rg = self.requires_grad[name]
            new_rg = requires_grad.get(name, rg)
            if new_rg and not tensor.is_floating_point():
                raise EditError(f"{name} holds class indices (int); it cannot require grad")
            changes.append(Change(name, None, tensor.clone(), new.clone(), rg, new_rg))
        return tuple(changes)

    def record_exercise(self, progress: Any, label: str) -> None:
        """Take the exercise's new progress as one undoable edit (values do not change)."""
        self._push(Entry(label, (), exercise=(self.exercise, progress)))
        self.exercise = progress

    def set_history(self, losses: list[float], steps_taken: int) -> None:
        """Take a loss history and step count as the baseline (a restored session's).

        `losses` are the last of the history (an autosave keeps only the last ones of a long
        training): each step adds the loss after it, and the loss before it when an edit came
        between, so at most two a step."""
        if steps_taken < 0 or len(losses) > 2 * steps_taken:
            raise EditError("a loss history holds at most two losses a step (before it after an edit, and after it)")
        self.sgd_losses = [float(x) for x in losses]
        self.steps_taken = int(steps_taken)

    def set_learning_rate(self, lr: float) -> None:
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            raise EditError(f"learning rate must be a positive finite number, got {lr!r}")
        self.learning_rate = float(lr)

    def undo(self) -> Snapshot:
        if not self.undo_stack:
            raise EditError("nothing to undo")
        entry = self.undo_stack[-1]
        snapshot = self._apply(entry, forward=False)
        self.undo_stack.pop()
        self._history_bytes -= _entry_bytes(entry)
        self.redo_stack.append(entry)
        if entry.losses:
            del self.sgd_losses[len(self.sgd_losses) - len(entry.losses):]
            self.steps_taken -= entry.steps
        if entry.cleared is not None:
            self.set_history(list(entry.cleared[0]), entry.cleared[1])
        if entry.exercise is not None:
            self.exercise = entry.exercise[0]
        return snapshot

    def redo(self) -> Snapshot:
        if not self.redo_stack:
            raise EditError("nothing to redo")
        entry = self.redo_stack[-1]
        snapshot = self._apply(entry, forward=True)
        self.redo_stack.pop()
        self.undo_stack.append(entry)
        self._history_bytes += _entry_bytes(entry)
        if entry.losses:
            self.sgd_losses.extend(entry.losses)
            self.steps_taken += entry.steps
        if entry.cleared is not None:
            self.set_history([], 0)
        if entry.exercise is not None:
            self.exercise = entry.exercise[1]
        return snapshot

    # ------------------------------------------------------------ internals

    def _history_is_current(self) -> bool:
        """True when the last thing done was an SGD step, so the history ends at the current loss."""
        return bool(self.sgd_losses) and bool(self.undo_stack) and bool(self.undo_stack[-1].losses)

    def _leaf(self, name: str) -> torch.Tensor:
        if name not in self.values:
            leaves = ", ".join(self.values)
            raise EditError(f"unknown leaf {name!r}; leaves: {leaves}")
        return self.values[name]

    def _check_index(self, name: str, tensor: torch.Tensor, index: Index) -> Index:
        if len(index) != tensor.dim():
            if tensor.dim() == 0:
                raise EditError(f"{name} is a scalar: give no index")
            raise EditError(f"{name} has shape {list(tensor.shape)}: give {tensor.dim()} index(es), got {len(index)}")
        for i, (k, size) in enumerate(zip(index, tensor.shape)):
            if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < size:
                raise EditError(
                    f"{format_index(name, index)}: index {k} is out of range 0..{size - 1} in dimension {i}"
                )
        return index

    def _reset_change(self, name: str) -> Change:
        initial = torch.from_numpy(self.preset.leaf(name).initial.copy())
        return Change(
            name,
            None,
            self.values[name].clone(),
            initial,
            self.requires_grad[name],
            self.preset.leaf(name).requires_grad,
        )

    def _commit(self, entry: Entry) -> Snapshot:
        snapshot = self._apply(entry, forward=True)
        self._push(entry)
        return snapshot

    def _push(self, entry: Entry) -> None:
        self.undo_stack.append(entry)
        self._history_bytes += _entry_bytes(entry)
        self.redo_stack.clear()
        self._trim_history()

    def _trim_history(self) -> None:
        """Forget the oldest edits past MAX_HISTORY entries or MAX_HISTORY_BYTES of tensors.

        Whole-tensor changes (SGD steps, resets) keep copies of the leaves they change:
        on mlp_784 that is 440 KB a step, so undo reaches back about 75 single SGD
        steps there, and the full MAX_HISTORY edits on the small presets.
        """
        stack = self.undo_stack
        drop = 0
        while len(stack) - drop > 1 and (len(stack) - drop > MAX_HISTORY or self._history_bytes > MAX_HISTORY_BYTES):
            self._history_bytes -= _entry_bytes(stack[drop])
            drop += 1
        del stack[:drop]

    def _history_copy(self, name: str) -> torch.Tensor:
        """A tensor equal to the leaf's value that history may keep: the one it holds already,
        when the leaf was last written whole from it and not edited since, else a copy."""
        written = self._written.get(name)
        value = self.values[name]
        if written is not None and written[1] is value and written[2] == value._version:
            return written[0]
        return value.clone()

    def _apply(self, entry: Entry, forward: bool) -> Snapshot:
        """Write the entry's changes, recompute; on a torch failure put everything back."""
        if not entry.changes:  # an exercise's answer: the values, and so the snapshot, stay
            return self.snapshot
        self._write(entry.changes, forward)
        try:
            snapshot = self.graph.compute(self.values, self.requires_grad)
        except ComputeError as exc:
            self._write(entry.changes, not forward)
            raise EditError(f"{entry.label}: torch cannot compute this ({exc}); nothing changed") from None
        self.previous, self.snapshot = self.snapshot, snapshot
        return snapshot

    def _write(self, changes: tuple[Change, ...], forward: bool) -> None:
        for change in changes:
            value = change.new if forward else change.old
            if change.index is None:
                self.values[change.name] = copy = value.clone()
                self._written[change.name] = (value, copy, copy._version)  # history's tensor, ours
            else:
                self.values[change.name][change.index].fill_(value)  # in place: bumps the tensor's version
            self.requires_grad[change.name] = change.new_rg if forward else change.old_rg
