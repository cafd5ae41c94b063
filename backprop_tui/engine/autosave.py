"""Autosave: the session's state kept on disk after each edit, so nothing the user did is lost.

One JSON state file per preset and explorer, under the user's data directory (the
platform's convention, via platformdirs; the environment variable BACKPROP_TUI_DATA_DIR
overrides it), in sessions/. The file name holds the preset's name, a fingerprint of its
content (a state saved for one version of a preset file is never restored onto a changed
one) and the explorer's instance, `PID-RANDOM`: two explorers on the same preset each
write their own file, and `find_states` lists the files of explorers no longer running.
Setting BACKPROP_TUI_AUTOSAVE=0 (or `backprop-tui --no-autosave`) turns autosave off.

What is kept: the values of the leaves that differ from the preset's initial values
(all of them, bit for bit, are the preset's own otherwise), every leaf's requires_grad
flag, the learning rate, the number of SGD steps, and the last MAX_SAVED_LOSSES losses of
the SGD history (a summary that keeps the file small however long the training was). Files are written atomically
(temporary file, flush, fsync, rename), so a crash mid-save leaves the previous file.

A changed leaf is stored in one of two forms under "values":

- dense: the whole tensor as nested lists (`Tensor.tolist()`), when at least a quarter
  of its elements differ from the preset's (after an SGD step, say);
- sparse: `{"changes": [[flat_index, value], ...]}`, only the elements that differ
  (bitwise, so -0.0 against 0.0 counts), indexed into the row-major flattened tensor,
  in increasing order. The rest are the preset's initial values. This keeps an edit of
  one weight of a 100k-element tensor from serialising the whole tensor (which holds the
  GIL for tens of milliseconds, a visible freeze of the UI thread).

Values are written as Python numbers from `tolist()`: a float32 converted to a double
and printed by `json` reads back as the same double, which converts back to the same
float32, so both forms round-trip bit for bit (nan and ±inf are written as JSON's
NaN/Infinity extension, as `json` does by default). Readers accept both forms in the
same version-1 file; files written before the sparse form existed hold only dense ones.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from backprop_tui.engine.errors import BackpropError, EditError
from backprop_tui.engine.files import FileRefused, atomic_write_text, is_running, read_limited, remove_stale_temporaries
from backprop_tui.engine.locations import ENV_AUTOSAVE, ENV_DATA_DIR, data_dir, new_instance, sessions_dir  # noqa: F401
from backprop_tui.engine.locations import autosave_enabled as enabled  # noqa: F401
from backprop_tui.engine.preset import Preset, presets_dir
from backprop_tui.engine.session import Session

MAX_SAVED_LOSSES = 1_000  # the last losses of the SGD history kept in a state file
MAX_OFFERED = 5  # state files of other explorers read and offered, newest first
FORMAT = "backprop-tui session"
VERSION = 1
RESTORE_LABEL = "restore autosaved session"


class AutosaveError(BackpropError):
    """The state file could not be written; the session itself is unaffected."""


@dataclass(frozen=True)
class SavedState:
    """A session's state as read back from its file (values in the file's dense or sparse form)."""

    preset: str
    fingerprint: str
    saved_at: str
    values: dict[str, Any]  # only leaves that differ from the preset's: nested lists or {"changes": ...}
    requires_grad: dict[str, bool]
    learning_rate: float
    loss_history: tuple[float, ...]
    steps_taken: int
    exercise: Any = None  # the exercise's progress (engine.exercise.Progress), if one was started


@dataclass(frozen=True)
class Lookup:
    """What `read_state` found: a usable state, or None and why (None when no file)."""

    state: SavedState | None
    problem: str | None = None
    path: Path | None = None


# ---------------------------------------------------------------- where


def fingerprint(preset: Preset) -> str:
    """A hash of everything in the preset that a saved state depends on or a reader sees."""
    h = hashlib.sha256()

    def add(*parts: Any) -> None:
        for part in parts:
            data = part if isinstance(part, bytes) else repr(part).encode("utf-8", "surrogatepass")
            h.update(len(data).to_bytes(8, "little"))
            h.update(data)

    add(preset.name, preset.title, preset.description, preset.output, preset.learning_rate)
    for leaf in preset.leaves:
        add(leaf.name, leaf.role, leaf.shape, leaf.dtype, leaf.requires_grad, leaf.note, leaf.module)
        add(leaf.initial.tobytes())
    for module in preset.modules:
        if module.type == "Linear":  # as before other types existed: saved sessions keep their files
            add(module.name, module.type, module.in_features, module.out_features, module.has_bias, module.note)
        else:
            add(module.name, module.type, module.options, module.parameters, module.note)
    for step in preset.steps:
        add(step.name, step.expr.text, step.note)
    for exercise in preset.exercises:  # progress is kept by exercise name
        add(exercise.name, exercise.node, exercise.allowed, exercise.prompt)
    return h.hexdigest()


_PROCESS_INSTANCE = new_instance()  # what the functions below use when no instance is given
_INSTANCE = re.compile(r"-(\d{1,10})-([0-9a-f]{8})\.json$")


def _stem(preset: Preset) -> str:
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", preset.name)[:40] or "preset"
    return f"{safe}-{fingerprint(preset)[:16]}"


def state_path(preset: Preset, instance: str | None = None) -> Path:
    return sessions_dir() / f"{_stem(preset)}-{instance or _PROCESS_INSTANCE}.json"


def remove_stale_files() -> list[Path]:
    """Remove the temporary files that a killed autosave left behind (called at start)."""
    return remove_stale_temporaries(sessions_dir())


# ---------------------------------------------------------------- save


def save_state(session: Session, instance: str | None = None) -> Path:
    """Write the session's state file atomically; AutosaveError if the disk refuses."""
    path = state_path(session.preset, instance)
    _refuse_bundled(path)
    text = json.dumps(state_dict(session), separators=(",", ":"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text, private=True)
    except OSError as exc:
        raise AutosaveError(f"cannot autosave to {path}: {exc.strerror or exc}") from None
    return path


SPARSE_KEY = "changes"
SPARSE_FRACTION = 0.25  # sparse when fewer than this fraction of a leaf's elements changed


def state_dict(session: Session) -> dict[str, Any]:
    """The JSON-ready state of a session: what save_state writes."""
    preset = session.preset
    changed = {}
    for leaf in preset.leaves:
        value = _stored_value(session.values[leaf.name], leaf.initial)
        if value is not None:
            changed[leaf.name] = value
    return {
        "format": FORMAT,
        "version": VERSION,
        "preset": preset.name,
        "fingerprint": fingerprint(preset),
        "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "values": changed,
        "requires_grad": dict(session.requires_grad),
        "learning_rate": session.learning_rate,
        "loss_history": list(session.sgd_losses[-MAX_SAVED_LOSSES:]),
        "steps_taken": session.steps_taken,
        **({"exercise": session.exercise.to_json()} if session.exercise is not None else {}),
    }


def _stored_value(value: torch.Tensor, initial) -> Any:
    """None if `value` equals `initial` bit for bit; else its dense or sparse JSON form."""
    start = torch.from_numpy(initial.copy())
    flat, start = value.detach().reshape(-1), start.reshape(-1)
    if flat.shape != start.shape or flat.dtype != start.dtype:
        return value.tolist()  # cannot happen through Session; stay dense and let the reader judge
    if flat.is_floating_point():  # compare bits: nan equals the same nan, -0.0 differs from 0.0
        bits = {torch.float16: torch.int16, torch.bfloat16: torch.int16, torch.float32: torch.int32,
                torch.float64: torch.int64}[flat.dtype]
        differs = flat.view(bits) != start.view(bits)
    else:
        differs = flat != start
    count = int(differs.sum())
    if count == 0:
        return None
    if count >= SPARSE_FRACTION * flat.numel():
        return value.tolist()
    indices = differs.nonzero().reshape(-1)
    return {SPARSE_KEY: [[i, v] for i, v in zip(indices.tolist(), flat[indices].tolist())]}


def _refuse_bundled(path: Path) -> None:
    bundled = presets_dir().resolve()
    target = path.parent.resolve()
    if target == bundled or bundled in target.parents:
        raise AutosaveError(f"refusing to write a state file into the bundled presets directory {bundled}")


# ---------------------------------------------------------------- load


def load_state(preset: Preset, instance: str | None = None) -> SavedState | None:
    """The saved state for this preset, or None (no file, or one that cannot be used)."""
    return read_state(preset, instance).state


def read_state(preset: Preset, instance: str | None = None) -> Lookup:
    """Like load_state, but says why a state file was ignored (corrupt, truncated, ...)."""
    return _read(state_path(preset, instance), preset)


def find_states(preset: Preset, exclude: str | None = None) -> list[Lookup]:
    """The state files of this preset left by explorers that no longer run, newest first
    (at most MAX_OFFERED), each read: a usable state, or None and why. `exclude`: the
    asking explorer's own instance. A file whose explorer still runs is not listed."""
    stem = _stem(preset)
    found = []
    try:
        entries = list(os.scandir(sessions_dir()))
    except OSError:
        return []
    for entry in entries:
        match = _INSTANCE.search(entry.name)
        if entry.name == stem + ".json":
            pass  # written before each explorer had its own file: its explorer has ended
        elif not entry.name.startswith(stem) or match is None or len(entry.name) != len(stem) + len(match.group(0)):
            continue
        elif f"{match.group(1)}-{match.group(2)}" == exclude or _still_running(int(match.group(1))):
            continue
        try:
            when = entry.stat(follow_symlinks=False).st_mtime_ns
        except OSError:
            continue
        found.append((when, Path(entry.path)))
    found.sort(reverse=True)
    return [_read(path, preset) for _, path in found[:MAX_OFFERED]]


def _still_running(pid: int) -> bool:
    """Another process with this id runs (one process runs one explorer at a time)."""
    return pid != os.getpid() and is_running(pid)


def _read(path: Path, preset: Preset) -> Lookup:
    if not os.path.lexists(path):
        return Lookup(None, None, path)
    try:
        data = read_limited(path, _max_state_bytes(preset))
    except FileRefused as exc:
        return Lookup(None, f"state file {path.name}: {exc}; ignored", path)
    try:
        return Lookup(_parse(data, preset), None, path)
    except _Unusable as exc:
        return Lookup(None, f"state file {path.name} is unusable ({exc}); ignored", path)


class _Unusable(Exception):
    pass


def _max_state_bytes(preset: Preset) -> int:
    elements = sum(leaf.initial.size for leaf in preset.leaves)
    return 1_000_000 + 40 * elements


def _parse(data: bytes, preset: Preset) -> SavedState:
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise _Unusable("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise _Unusable(f"not valid JSON, perhaps truncated: {exc.msg} at character {exc.pos}") from None
    except RecursionError:
        raise _Unusable("JSON nests too deeply") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _Unusable("not a backprop-tui session file")
    if doc.get("version") != VERSION:
        raise _Unusable(f"format version {doc.get('version')!r}; this program reads version {VERSION}")
    if doc.get("preset") != preset.name or doc.get("fingerprint") != fingerprint(preset):
        raise _Unusable("saved for a different version of this preset")
    leaves = {leaf.name: leaf for leaf in preset.leaves}
    values = _field(doc, "values", dict)
    for name, value in values.items():
        if name not in leaves:
            raise _Unusable(f"unknown leaf {name!r}")
        _check_tensor(name, value, leaves[name])
    requires_grad = _field(doc, "requires_grad", dict)
    if set(requires_grad) != set(leaves) or not all(isinstance(v, bool) for v in requires_grad.values()):
        raise _Unusable("requires_grad must give true or false for every leaf")
    if any(requires_grad[n] and leaf.dtype == "int" for n, leaf in leaves.items()):
        raise _Unusable("an int leaf cannot require grad")
    lr = doc.get("learning_rate")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise _Unusable("learning_rate must be a positive number")
    history = _field(doc, "loss_history", list)
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in history):
        raise _Unusable("loss_history must hold numbers")
    steps = doc.get("steps_taken")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise _Unusable("steps_taken must be a non-negative integer")
    exercise = None
    if "exercise" in doc:
        from backprop_tui.engine.exercise.progress import Progress

        try:
            exercise = Progress.from_json(
                doc["exercise"], [*leaves, *(step.name for step in preset.steps), *(e.name for e in preset.exercises)]
            )
        except ValueError as exc:
            raise _Unusable(str(exc)) from None
    return SavedState(
        preset=preset.name,
        fingerprint=doc["fingerprint"],
        saved_at=_saved_at(doc.get("saved_at")),
        values=values,
        requires_grad=requires_grad,
        learning_rate=float(lr),
        loss_history=tuple(float(x) for x in history),
        steps_taken=steps,
        exercise=exercise,
    )


def _saved_at(value: Any) -> str:
    """The time the file says it was saved, written anew from the parsed date (so nothing
    else in that string reaches the screen), or "" if it is not an ISO date and time."""
    if not isinstance(value, str) or len(value) > 64:
        return ""
    try:
        return datetime.fromisoformat(value).isoformat(timespec="seconds")
    except ValueError:
        return ""


def _field(doc: dict, key: str, kind: type) -> Any:
    value = doc.get(key)
    if not isinstance(value, kind):
        raise _Unusable(f"'{key}' is missing or not a {kind.__name__}")
    return value


def _check_tensor(name: str, value: Any, leaf) -> None:
    if isinstance(value, dict):
        _check_changes(name, value, leaf)
        return
    try:
        array = torch.tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError, OverflowError):
        raise _Unusable(f"{name} is not a rectangular array of numbers") from None
    if tuple(array.shape) != leaf.shape:
        raise _Unusable(f"{name} has shape {list(array.shape)}, the preset says {list(leaf.shape)}")
    if leaf.dtype == "int":
        whole = torch.isfinite(array).all() and (array == array.round()).all()
        if not whole or (array.abs() > 2**62).any():
            raise _Unusable(f"{name} holds class indices, but the file has other numbers")


def _whole(x: int | float) -> bool:
    """A number an int64 class index can be (as the dense check: finite, whole, |x| <= 2**62)."""
    if isinstance(x, int):
        return abs(x) <= 2**62
    return math.isfinite(x) and x.is_integer() and abs(x) <= 2**62


def _check_changes(name: str, value: dict, leaf) -> None:
    """A sparse value: {"changes": [[flat_index, number], ...]}, checked strictly."""
    if set(value) != {SPARSE_KEY}:
        raise _Unusable(f"{name} is an object, but not {{\"{SPARSE_KEY}\": [[index, value], ...]}}")
    changes = value[SPARSE_KEY]
    if not isinstance(changes, list) or not changes:
        raise _Unusable(f"{name}: '{SPARSE_KEY}' must be a non-empty list of [index, value] pairs")
    size = leaf.initial.size
    seen: set[int] = set()
    for entry in changes:
        if not isinstance(entry, list) or len(entry) != 2:
            raise _Unusable(f"{name}: each of '{SPARSE_KEY}' must be an [index, value] pair")
        index, number = entry
        if isinstance(index, bool) or not isinstance(index, int):
            raise _Unusable(f"{name}: index {index!r} is not an integer")
        if not 0 <= index < size:
            raise _Unusable(f"{name}: index {index} is out of range for {size} elements")
        if index in seen:
            raise _Unusable(f"{name}: index {index} is changed twice")
        seen.add(index)
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise _Unusable(f"{name}: the value at index {index} is not a number")
        if leaf.dtype == "int":
            if not _whole(number):
                raise _Unusable(f"{name} holds class indices, but the file has other numbers")
        else:
            try:
                float(number)
            except OverflowError:  # an int beyond any float, as the dense check refuses
                raise _Unusable(f"{name}: the value at index {index} is too large for a number") from None


# ---------------------------------------------------------------- restore


def restore(session: Session, state: SavedState) -> None:
    """Apply a saved state to a session: the values as one undoable edit, then lr and history.

    EditError if the state does not fit this session's preset or torch cannot compute it;
    the session is then unchanged.
    """
    if state.preset != session.preset.name or state.fingerprint != fingerprint(session.preset):
        raise EditError("the saved session belongs to a different version of this preset")
    if set(state.requires_grad) != set(session.values) or not set(state.values) <= set(session.values):
        raise EditError("the saved session names other leaves than this preset's")
    values = {}
    for leaf in session.preset.leaves:
        if leaf.name in state.values:
            old = session.values[leaf.name]
            saved = state.values[leaf.name]
            try:
                if isinstance(saved, dict):
                    values[leaf.name] = _apply_changes(leaf, saved, old.dtype)
                else:
                    values[leaf.name] = torch.tensor(saved, dtype=old.dtype)
            except (TypeError, ValueError, RuntimeError, OverflowError, KeyError, IndexError):
                raise EditError(f"the saved value of {leaf.name} is not a tensor of numbers") from None
    session.apply_state(values, dict(state.requires_grad), RESTORE_LABEL)
    session.set_learning_rate(state.learning_rate)
    session.set_history(list(state.loss_history), state.steps_taken)
    session.exercise = state.exercise


def _apply_changes(leaf, saved: dict, dtype: torch.dtype) -> torch.Tensor:
    """The preset's initial value of `leaf` with a sparse value's changes written in."""
    changes = saved[SPARSE_KEY]
    indices = [index for index, _ in changes]
    if any(isinstance(i, bool) or not isinstance(i, int) for i in indices) or len(set(indices)) != len(indices):
        raise ValueError("indices must be distinct integers")
    tensor = torch.from_numpy(leaf.initial.copy()).to(dtype)
    flat = tensor.view(-1)
    if indices:
        index = torch.tensor(indices, dtype=torch.int64)
        if int(index.min()) < 0 or int(index.max()) >= flat.numel():
            raise IndexError("index out of range")
        flat[index] = torch.tensor([number for _, number in changes], dtype=dtype)
    return tensor


# ---------------------------------------------------------------- clear


def clear_state(preset: Preset, instance: str | None = None) -> bool:
    """Remove this preset's state file; True if there was one."""
    return remove_state_file(state_path(preset, instance))


def remove_state_file(path: Path) -> bool:
    """Remove one state file (one that `find_states` listed); True if it was there."""
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise AutosaveError(f"cannot remove {path}: {exc.strerror or exc}") from None
