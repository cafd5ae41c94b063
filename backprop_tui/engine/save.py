"""Saving the edited state as a new preset file that loads back to the same snapshot.

The file is the preset's own TOML with the current leaf values written in: every value
as the shortest decimal that reads back to the same float32, so nothing drifts. A tensor
or module still at its preset value keeps the table it was loaded from (`init = "randn"`,
`seed = 1`), so a large seeded preset stays small. Before anything is written, the text
is loaded back with `parse_preset` and compared with the state; the write itself is
atomic, never replaces an existing file unless asked, and never goes into the bundled
presets folder.
"""

from __future__ import annotations

import os
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import tomli_w
import torch

from backprop_tui.engine import limits
from backprop_tui.engine.errors import BackpropError
from backprop_tui.engine.expr import is_valid_name
from backprop_tui.engine.files import FileRefused, atomic_write_text, read_limited, write_target
from backprop_tui.engine.preset import LeafSpec, ModuleSpec, Preset, parse_preset, presets_dir, printable


class SaveError(BackpropError):
    """A save that was refused or failed; nothing was written."""


def preset_document(
    state, name: str | None = None, title: str | None = None, reuse_source: bool = True
) -> dict[str, Any]:
    """The TOML data of a preset holding `state`'s current values, flags and learning rate."""
    preset: Preset = state.preset
    values: Mapping[str, torch.Tensor] = state.values
    flags: Mapping[str, bool] = state.requires_grad
    source = _source_tables(preset) if reuse_source else {"tensors": {}, "modules": {}}
    doc: dict[str, Any] = {
        "name": name or preset.name,
        "title": title or preset.title,
        "description": preset.description,
        "output": preset.output,
        "learning_rate": float(getattr(state, "learning_rate", preset.learning_rate)),
        "tensors": {},
    }
    for leaf in preset.leaves:
        if leaf.module is None:
            doc["tensors"][leaf.name] = _tensor_table(
                leaf, values[leaf.name], flags[leaf.name], source["tensors"].get(leaf.name)
            )
    if preset.modules:
        doc["modules"] = {
            m.name: _module_table(preset, m, values, flags, source["modules"].get(m.name)) for m in preset.modules
        }
    doc["steps"] = [_step_table(step) for step in preset.steps]
    if preset.exercises:
        doc["exercises"] = [_exercise_table(e) for e in preset.exercises]
    answers = _answers_table(state)
    if answers:
        doc["answers"] = answers
    return doc


def preset_toml(state, name: str | None = None, title: str | None = None) -> str:
    """The preset text, checked to load back to exactly this state (SaveError if it cannot)."""
    last: Exception | None = None
    for reuse in (True, False):  # if the source file changed since it was loaded, write every value
        doc = preset_document(state, name, title, reuse_source=reuse)
        for indent in (4, 0):  # a big model's values fit the loader's size limit without indentation
            text = tomli_w.dumps(doc, indent=indent, multiline_strings=True)
            if len(text.encode("utf-8")) <= limits.MAX_FILE_BYTES:
                break
        else:
            raise SaveError(
                f"the preset would be {len(text.encode('utf-8')):,} bytes; presets load up to {limits.MAX_FILE_BYTES:,}"
            )
        try:
            _check_round_trip(state, text)
            return text
        except SaveError as exc:
            last = exc
    raise SaveError(f"the saved preset would not load back to this state: {last}")


def save_preset(
    state, path: str | Path, *, overwrite: bool = False, name: str | None = None, title: str | None = None
) -> Path:
    """Write the state as a preset at `path` (".toml" is added if missing); return the path.

    Refuses (SaveError, nothing written; no other exception) an existing file unless
    `overwrite`, anything but a regular file (a folder, a symbolic link, a device, a FIFO),
    a folder that does not exist, and any place inside the bundled presets directory.
    After a save, a Session's caller may call `session.mark_saved()`.
    """
    shown = printable(with_toml_suffix(str(path)))
    try:
        target = write_target(with_toml_suffix(str(path)))
        bundled = presets_dir().resolve()
        inside = target.resolve()
    except FileRefused as exc:
        raise SaveError(f"{shown}: {exc}") from None
    except (OSError, RuntimeError, ValueError) as exc:
        raise SaveError(f"{shown}: {getattr(exc, 'strerror', None) or exc}") from None
    if inside == bundled or bundled in inside.parents:
        raise SaveError(f"{shown} is inside the bundled presets folder; save your preset somewhere else")
    if os.path.lexists(target) and not overwrite:
        raise SaveError(f"{shown} exists; confirm to overwrite it")
    if name is None and is_valid_name(target.stem):
        name = target.stem
    text = preset_toml(state, name, title)
    try:
        atomic_write_text(target, text)
    except (OSError, ValueError) as exc:
        raise SaveError(f"cannot write {shown}: {getattr(exc, 'strerror', None) or exc}") from None
    return target


def with_toml_suffix(text: str) -> str:
    """`text` with ".toml" added when it names a file without it (a folder-like text is left as is)."""
    text = text.strip()
    name = Path(text).name
    if text in ("", "~") or text.endswith(("/", os.sep)) or name in ("", ".", "..") or Path(text).suffix == ".toml":
        return text
    return text + ".toml"


# ---------------------------------------------------------------- tables


def _tensor_table(leaf: LeafSpec, value: torch.Tensor, requires_grad: bool, original: dict | None) -> dict[str, Any]:
    if original is not None and _unchanged(leaf, value) and requires_grad == leaf.requires_grad:
        return original
    table: dict[str, Any] = {"role": leaf.role}
    if leaf.dtype == "int":
        table["dtype"] = "int"
    table["value"] = _toml_values(value, leaf.name)
    if requires_grad != (leaf.role == "parameter" and leaf.dtype == "float"):
        table["requires_grad"] = requires_grad
    if leaf.note:
        table["note"] = leaf.note
    return table


def _module_table(preset: Preset, module: ModuleSpec, values, flags, original: dict | None) -> dict[str, Any]:
    params = [preset.leaf(p) for p in module.parameter_names]
    rg = {flags[p.name] for p in params}
    if len(rg) > 1:
        raise SaveError(
            f"{module.name}'s weight and bias differ in requires_grad; "
            "a preset sets it once per module: make them agree first"
        )
    requires_grad = rg.pop()
    unchanged = all(_unchanged(p, values[p.name]) and flags[p.name] == p.requires_grad for p in params)
    if original is not None and unchanged:
        return original
    table: dict[str, Any] = {"type": module.type, **dict(module.options)}
    table["weight"] = _toml_values(values[f"{module.name}.weight"], f"{module.name}.weight")
    if module.has_bias:
        table["bias"] = _toml_values(values[f"{module.name}.bias"], f"{module.name}.bias")
    elif module.kind.bias_optional:
        table["bias"] = False
    if not requires_grad:
        table["requires_grad"] = False
    if module.note:
        table["note"] = module.note
    return table


def _step_table(step) -> dict[str, str]:
    table = {"name": step.name, "expr": step.expr.text}
    if step.note:
        table["note"] = step.note
    return table


def _answers_table(state) -> dict[str, Any]:
    """The learner's answers, kept with the preset: the session's progress, else the file's own."""
    from backprop_tui.engine.exercise.grading import answers_table

    progress = getattr(state, "exercise", None)
    answers = state.preset.answers if progress is None else [(key, e.answer) for key, e in progress.entries]
    return answers_table(answers, (e.name for e in state.preset.exercises))


def _exercise_table(exercise) -> dict[str, object]:
    table: dict[str, object] = {"name": exercise.name, "node": exercise.node, "allowed": list(exercise.allowed)}
    if exercise.prompt:
        table["prompt"] = exercise.prompt
    return table


def _unchanged(leaf: LeafSpec, value: torch.Tensor) -> bool:
    current = value.detach().numpy()
    return (
        current.dtype == leaf.initial.dtype
        and current.shape == leaf.initial.shape
        and np.array_equal(current, leaf.initial)
    )


def _toml_values(value: torch.Tensor, name: str) -> Any:
    """Numbers as TOML takes them: float32 as the shortest decimal that reads back the same."""
    array = value.detach().numpy()
    if array.dtype.kind == "i":
        return array.tolist()
    if not np.isfinite(array).all():
        raise SaveError(f"{name} holds nan or inf; a preset holds finite numbers only (undo the step that diverged)")
    texts = array.astype(np.float32).astype(str)  # numpy prints the shortest round-trip decimal
    return np.vectorize(Decimal, otypes=[object])(texts).tolist() if texts.ndim else Decimal(str(texts))


def _source_tables(preset: Preset) -> dict[str, dict]:
    """The [tensors] and [modules] tables of the file the preset was loaded from, if readable."""
    empty: dict[str, dict] = {"tensors": {}, "modules": {}}
    if preset.source.startswith("<"):
        return empty
    try:
        doc = tomllib.loads(read_limited(preset.source, limits.MAX_FILE_BYTES).decode("utf-8"))
    except (FileRefused, UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError, RecursionError):
        return empty
    tensors, modules = doc.get("tensors"), doc.get("modules")
    return {
        "tensors": tensors if isinstance(tensors, dict) else {},
        "modules": modules if isinstance(modules, dict) else {},
    }


def _check_round_trip(state, text: str) -> None:
    try:
        loaded = parse_preset(text, source="<saved preset>")
    except BackpropError as exc:
        raise SaveError(str(exc)) from None
    preset: Preset = state.preset
    if loaded.leaf_names != preset.leaf_names or [s.expr.text for s in loaded.steps] != [
        s.expr.text for s in preset.steps
    ]:
        raise SaveError("the tensors or steps differ")
    for leaf in loaded.leaves:
        if not _unchanged(leaf, state.values[leaf.name]):
            raise SaveError(f"the values of {leaf.name} differ")
        if leaf.requires_grad != state.requires_grad[leaf.name]:
            raise SaveError(f"requires_grad of {leaf.name} differs")
