"""Autosave: state files round-trip, bad ones are ignored with a reason, saves are atomic."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from backprop_tui.engine import EditError, PresetError, Session, parse_preset
from backprop_tui.engine import autosave
from backprop_tui.engine.autosave import (
    RESTORE_LABEL,
    AutosaveError,
    clear_state,
    fingerprint,
    load_state,
    read_state,
    restore,
    save_state,
    state_path,
)
from backprop_tui.engine.preset import bundled_presets, presets_dir
from robustness_support import FRAGILE_PRESET, bundled, preset_from


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    path = tmp_path / "data"
    monkeypatch.setenv(autosave.ENV_DATA_DIR, str(path))
    return path


def snapshot_numbers(snapshot) -> list:
    return [
        (n.name, n.value.tolist(), None if n.grad is None else n.grad.tolist(), n.requires_grad) for n in snapshot.nodes
    ]


def same_snapshot(a, b) -> bool:
    """Equal node by node, nan equal to nan (a state may hold them after SGD on a bad value)."""
    return (
        len(a.nodes) == len(b.nodes)
        and all(
            x.name == y.name
            and x.requires_grad == y.requires_grad
            and np.array_equal(x.value, y.value, equal_nan=x.value.dtype.kind == "f")
            and (
                (x.grad is None and y.grad is None)
                or (x.grad is not None and y.grad is not None and np.array_equal(x.grad, y.grad, equal_nan=True))
            )
            for x, y in zip(a.nodes, b.nodes)
        )
        and a.warnings == b.warnings
    )


def edited_session(name: str) -> Session:
    session = Session(bundled(name))
    leaf = next(n for n in session.preset.leaves if n.dtype == "float")
    index = (0,) * len(leaf.shape)
    session.set_element(leaf.name, index, 0.375)
    session.step()
    session.step()
    session.set_learning_rate(0.0625)
    return session


SMALL_BUNDLED = sorted(name for name, path in bundled_presets().items() if path.stat().st_size < 5_000)


@pytest.mark.parametrize("name", SMALL_BUNDLED)
def test_round_trip_restores_identical_snapshot(name):
    """Edit, SGD twice, save; a fresh session of the same preset restored equals it exactly."""
    session = edited_session(name)
    session.toggle_requires_grad(next(leaf.name for leaf in session.preset.leaves if leaf.dtype == "float"))
    path = save_state(session)
    assert path.parent.parent == autosave.data_dir() and path.exists()

    fresh = Session(bundled(name))
    state = load_state(fresh.preset)
    assert state is not None
    restore(fresh, state)
    assert same_snapshot(fresh.snapshot, session.snapshot)
    assert fresh.requires_grad == session.requires_grad
    assert fresh.learning_rate == 0.0625
    assert fresh.sgd_losses == session.sgd_losses and fresh.loss_history == session.loss_history
    assert fresh.steps_taken == 2
    # one undoable edit, which takes the values back to the preset's
    assert [entry.label for entry in fresh.undo_stack] == [RESTORE_LABEL]
    fresh.undo()
    assert same_snapshot(fresh.snapshot, Session(bundled(name)).snapshot)


def test_nan_values_round_trip():
    """A state holding nan (SGD after sqrt of a negative) saves and restores as nan."""
    text = 'output = "J"\n[tensors.x]\nrole = "parameter"\nvalue = 4.0\n[[steps]]\nname = "J"\nexpr = "sqrt(x)"\n'
    preset = parse_preset(text, default_name="nan_case")
    session = Session(preset)
    session.set_element("x", (), -4.0)
    session.step()
    save_state(session)
    fresh = Session(preset)
    restore(fresh, load_state(preset))
    assert np.isnan(fresh.values["x"].item()) and same_snapshot(fresh.snapshot, session.snapshot)


def test_only_changed_leaves_are_stored():
    session = Session(bundled("simple_nn"))
    session.set_element("X", (0, 1), 7.0)
    data = json.loads(save_state(session).read_text())
    assert list(data["values"]) == ["X"] and data["values"]["X"][0][1] == 7.0
    assert set(data["requires_grad"]) == set(session.values)


def same_bits(a, b) -> bool:
    """Equal bit for bit: same dtype and shape, nan and -0.0 included."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.is_floating_point():
        bits = {torch.float32: torch.int32, torch.float64: torch.int64}[a.dtype]
        return torch.equal(a.contiguous().view(bits), b.contiguous().view(bits))
    return torch.equal(a, b)


def restored(session: Session) -> Session:
    save_state(session)
    fresh = Session(session.preset)
    state = load_state(fresh.preset)
    assert state is not None
    restore(fresh, state)
    return fresh


def test_one_edit_on_mlp_784_is_stored_sparse_and_round_trips_bit_for_bit():
    """One weight of 100k edited: the file holds that element, not the dense tensor."""
    session = Session(bundled("mlp_784"))
    session.set_element("linear1.weight", (5, 700), 0.1)  # 0.1 is not a float32: the nearest one is kept
    session.set_element("X", (31, 783), -0.0)  # bitwise change of a 0.0 pixel
    session.set_element("classes", (3,), 1)
    doc = autosave.state_dict(session)
    assert doc["values"] == {
        "X": {"changes": [[31 * 784 + 783, -0.0]]},
        "classes": {"changes": [[3, 1]]},
        "linear1.weight": {"changes": [[5 * 784 + 700, float(np.float32(0.1))]]},
    }
    assert math.copysign(1.0, doc["values"]["X"]["changes"][0][1]) == -1.0
    assert save_state(session).stat().st_size < 2_000

    fresh = restored(session)
    for name, value in session.values.items():
        assert same_bits(fresh.values[name], value), name
    assert same_snapshot(fresh.snapshot, session.snapshot)
    fresh.undo()
    for leaf in fresh.preset.leaves:
        assert np.array_equal(fresh.values[leaf.name].numpy(), leaf.initial), leaf.name


def test_many_changes_are_stored_dense():
    """After an SGD step every parameter element moved: dense lists, and a bit-for-bit restore."""
    session = Session(bundled("mlp_784"))
    session.set_element("X", (0, 0), 0.5)
    session.step()
    values = autosave.state_dict(session)["values"]
    assert isinstance(values["X"], dict)  # one pixel of 25k: still sparse
    for name in ("linear1.weight", "linear1.bias", "linear2.weight", "linear3.bias"):
        assert isinstance(values[name], list) and len(values[name]) == session.values[name].shape[0], name
    assert "classes" not in values
    fresh = restored(session)
    for name, value in session.values.items():
        assert same_bits(fresh.values[name], value), name


def test_sparse_below_a_quarter_dense_from_a_quarter():
    session = Session(bundled("dead_relu"))  # hidden.weight has 6 elements
    session.set_element("hidden.weight", (0, 0), 2.5)
    assert autosave.state_dict(session)["values"] == {"hidden.weight": {"changes": [[0, 2.5]]}}
    session.set_element("hidden.weight", (2, 1), -1.5)  # 2 of 6: a third
    values = autosave.state_dict(session)["values"]
    assert isinstance(values["hidden.weight"], list) and values["hidden.weight"][2][1] == -1.5
    assert same_snapshot(restored(session).snapshot, session.snapshot)


def test_dense_file_of_a_large_leaf_is_still_read():
    """A file written before the sparse form (dense lists for any change) restores the same."""
    session = Session(bundled("mlp_784"))
    session.set_element("linear1.weight", (0, 1), 3.0)
    doc = autosave.state_dict(session)
    doc["values"] = {"linear1.weight": session.values["linear1.weight"].tolist()}
    _write_state(session.preset, json.dumps(doc))
    fresh = Session(session.preset)
    restore(fresh, load_state(fresh.preset))
    assert same_bits(fresh.values["linear1.weight"], session.values["linear1.weight"])


def test_restore_refuses_a_bad_sparse_state_built_by_hand():
    session = Session(bundled("mlp_784"))
    state = autosave.SavedState(
        preset="mlp_784", fingerprint=fingerprint(session.preset), saved_at="",
        values={"linear3.bias": {"changes": [[10, 1.0]]}}, requires_grad=dict(session.requires_grad),
        learning_rate=0.1, loss_history=(), steps_taken=0,
    )
    with pytest.raises(EditError, match="linear3.bias is not a tensor of numbers"):
        restore(session, state)
    assert not session.undo_stack


SPARSE_CORRUPTIONS = {
    "other keys": ({"changes": [[0, 1.0]], "extra": 1}, 'linear3.bias is an object, but not {"changes"'),
    "no changes key": ({"change": [[0, 1.0]]}, "linear3.bias is an object, but not"),
    "changes not a list": ({"changes": {"0": 1.0}}, "'changes' must be a non-empty list"),
    "empty changes": ({"changes": []}, "'changes' must be a non-empty list"),
    "not a pair": ({"changes": [[0, 1.0, 2.0]]}, "each of 'changes' must be an [index, value] pair"),
    "pair as object": ({"changes": [{"0": 1.0}]}, "each of 'changes' must be an [index, value] pair"),
    "float index": ({"changes": [[1.0, 1.0]]}, "index 1.0 is not an integer"),
    "bool index": ({"changes": [[True, 1.0]]}, "index True is not an integer"),
    "negative index": ({"changes": [[-1, 1.0]]}, "index -1 is out of range for 10 elements"),
    "index past the end": ({"changes": [[10, 1.0]]}, "index 10 is out of range for 10 elements"),
    "duplicate index": ({"changes": [[3, 1.0], [4, 2.0], [3, 1.0]]}, "index 3 is changed twice"),
    "string value": ({"changes": [[0, "1.0"]]}, "the value at index 0 is not a number"),
    "null value": ({"changes": [[0, None]]}, "the value at index 0 is not a number"),
    "bool value": ({"changes": [[0, False]]}, "the value at index 0 is not a number"),
    "huge int value": ({"changes": [[0, 10**400]]}, "the value at index 0 is too large"),
}
INT_LEAF_CORRUPTIONS = {
    "fraction": [[0, 1.5]],
    "nan": [[0, float("nan")]],
    "infinity": [[0, float("inf")]],
    "too large": [[0, 2**63]],
}


@pytest.mark.parametrize("case", sorted(SPARSE_CORRUPTIONS) + [f"int {c}" for c in sorted(INT_LEAF_CORRUPTIONS)])
def test_bad_sparse_value_is_ignored_with_a_reason(case):
    session = Session(bundled("mlp_784"))
    session.set_element("linear1.weight", (0, 0), 2.0)
    doc = autosave.state_dict(session)
    if case.startswith("int "):
        values, reason = {"classes": {"changes": INT_LEAF_CORRUPTIONS[case[4:]]}}, "classes holds class indices"
    else:
        value, reason = SPARSE_CORRUPTIONS[case]
        values = {"linear3.bias": value}
    _write_state(session.preset, json.dumps({**doc, "values": {**doc["values"], **values}}))
    lookup = read_state(session.preset)
    assert lookup.state is None
    assert reason in lookup.problem and "ignored" in lookup.problem and "\n" not in lookup.problem


def test_sparse_float_values_may_be_nan_or_infinite_as_dense_ones():
    session = Session(bundled("mlp_784"))
    doc = autosave.state_dict(session)
    values = {"linear3.bias": {"changes": [[0, float("nan")], [9, float("-inf")], [4, 2]]}}
    _write_state(session.preset, json.dumps({**doc, "values": values}))
    state = load_state(session.preset)
    assert state is not None
    restore(session, state)
    bias = session.values["linear3.bias"]
    assert math.isnan(bias[0]) and bias[9] == -math.inf and bias[4] == 2.0


def test_no_file_means_none():
    lookup = read_state(bundled("scalar_chain"))
    assert lookup.state is None and lookup.problem is None


def test_changed_preset_is_not_restored_onto():
    """A state saved for one version of a preset file is not found for an edited version."""
    original = bundled("linear_regression")
    session = Session(original)
    session.set_element("w", (), 9.0)
    save_state(session)
    edited_text = bundled_presets()["linear_regression"].read_text().replace("value = 3.0", "value = 4.0", 1)
    edited = parse_preset(edited_text, default_name="linear_regression")
    assert edited.name == original.name and fingerprint(edited) != fingerprint(original)
    assert state_path(edited) != state_path(original)
    assert load_state(edited) is None
    assert load_state(original) is not None


def test_state_for_another_preset_version_is_refused_by_restore():
    session = Session(bundled("linear_regression"))
    session.set_element("w", (), 9.0)
    save_state(session)
    state = load_state(session.preset)
    edited = parse_preset(
        bundled_presets()["linear_regression"].read_text()
        + "\n# a comment\n[tensors.z]\nrole = \"input\"\nvalue = 1.0\n",
        default_name="linear_regression",
    )
    other = Session(edited)
    with pytest.raises(EditError, match="different version"):
        restore(other, state)
    assert not other.undo_stack


def _write_state(preset, text: str | bytes):
    path = state_path(preset)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def _valid_state_text(session: Session) -> str:
    return json.dumps(autosave.state_dict(session))


def _corruptions(good: str) -> dict[str, tuple[str | bytes, str]]:
    doc = json.loads(good)

    def changed(**kw):
        return json.dumps({**doc, **kw})

    return {
        "truncated": (good[: len(good) // 2], "not valid JSON, perhaps truncated"),
        "empty": ("", "not valid JSON"),
        "binary junk": (b"\xff\xfe\x00garbage", "not UTF-8"),
        "not an object": ("[1, 2, 3]", "not a backprop-tui session file"),
        "other format": (json.dumps({"format": "something else"}), "not a backprop-tui session file"),
        "future version": (changed(version=99), "format version 99"),
        "other fingerprint": (changed(fingerprint="0" * 64), "different version of this preset"),
        "unknown leaf": (changed(values={"nope": 1.0}), "unknown leaf 'nope'"),
        "wrong shape": (changed(values={"X": [1.0, 2.0]}), "X has shape [2], the preset says [2, 2]"),
        "not numbers": (changed(values={"X": [["a", "b"], ["c", "d"]]}), "X is not a rectangular array"),
        "requires_grad missing": (changed(requires_grad={}), "requires_grad must give true or false"),
        "bad learning rate": (changed(learning_rate=-1), "learning_rate must be a positive number"),
        "bad history": (changed(loss_history=["x"]), "loss_history must hold numbers"),
        "bad steps": (changed(steps_taken=-3), "steps_taken must be a non-negative integer"),
        "deep nesting": ("[" * 100_000 + "]" * 100_000, "JSON nests too deeply"),
    }


CORRUPTIONS = sorted(_corruptions("{}"))


@pytest.mark.parametrize("case", CORRUPTIONS)
def test_corrupt_state_is_ignored_with_a_reason(case, record_property):
    session = Session(bundled("simple_nn"))
    session.set_element("X", (0, 0), 5.0)
    text, reason = _corruptions(_valid_state_text(session))[case]
    record_property("expected", reason)
    _write_state(session.preset, text)
    lookup = read_state(session.preset)
    assert lookup.state is None
    assert reason in lookup.problem and "ignored" in lookup.problem and "\n" not in lookup.problem
    assert load_state(session.preset) is None
    # and the next save replaces it with a good one
    save_state(session)
    assert load_state(session.preset) is not None


def test_int_leaf_state_checked():
    session = Session(bundled("softmax_classifier"))
    doc = json.loads(_valid_state_text(session))
    _write_state(session.preset, json.dumps({**doc, "values": {"classes": [0, 1.5, 2, 1]}}))
    assert "class indices" in read_state(session.preset).problem
    _write_state(session.preset, json.dumps({**doc, "requires_grad": {**doc["requires_grad"], "classes": True}}))
    assert "int leaf cannot require grad" in read_state(session.preset).problem


def test_restore_that_torch_refuses_changes_nothing():
    """A (hand-edited) state with a probability of 1.5 is refused as one edit: the session stays."""
    preset = preset_from(FRAGILE_PRESET)
    session = Session(preset)
    doc = json.loads(_valid_state_text(session))
    _write_state(preset, json.dumps({**doc, "values": {"p": [1.5, 0.5]}}))
    state = load_state(preset)
    with pytest.raises(EditError, match="between 0 and 1"):
        restore(session, state)
    assert session.values["p"].tolist() == [0.25, 0.75] and not session.undo_stack


def test_failure_between_write_and_rename_keeps_the_previous_file(monkeypatch):
    session = Session(bundled("linear_regression"))
    session.set_element("w", (), 1.5)
    path = save_state(session)
    previous = path.read_bytes()

    session.set_element("w", (), 2.5)

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", broken_replace)
        with pytest.raises(AutosaveError, match="No space left on device"):
            save_state(session)
    assert path.read_bytes() == previous
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    assert load_state(session.preset).values == {"w": 1.5}


def test_process_killed_mid_save_keeps_the_previous_file(data_dir):
    """A real process dies (SIGKILL) after writing and fsyncing the temporary file, before the rename."""
    session = Session(bundled("linear_regression"))
    session.set_element("w", (), 1.5)
    path = save_state(session)
    previous = path.read_bytes()
    script = textwrap.dedent(
        """
        import os, signal
        from backprop_tui.engine import Session, load_preset, bundled_presets
        from backprop_tui.engine.autosave import save_state
        session = Session(load_preset(bundled_presets()["linear_regression"]))
        session.set_element("w", (), 2.5)
        os.replace = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)
        save_state(session)
        """
    )
    env = {**os.environ, autosave.ENV_DATA_DIR: str(data_dir)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert result.returncode == -9
    assert path.read_bytes() == previous
    leftovers = [p for p in path.parent.iterdir() if p != path]
    assert len(leftovers) == 1 and leftovers[0].name.endswith(".bptmp")  # the unrenamed temporary file
    assert load_state(session.preset).values == {"w": 1.5}
    assert autosave.remove_stale_files() == leftovers  # the next start removes it: its writer is gone
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_fifo_or_a_symlink_to_a_device_at_the_autosave_path_neither_blocks_nor_is_read(data_dir):
    session = Session(bundled("linear_regression"))
    path = state_path(session.preset)
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    lookup = read_state(session.preset)
    assert lookup.state is None and "not a regular file but a FIFO (named pipe)" in lookup.problem
    with pytest.raises(AutosaveError, match="only a regular file is replaced"):
        save_state(session)
    path.unlink()
    path.symlink_to("/dev/zero")
    lookup = read_state(session.preset)
    assert lookup.state is None and "not a regular file but a character device" in lookup.problem


def test_saving_never_writes_into_the_bundled_presets(monkeypatch):
    bundled_dir = presets_dir().resolve()
    before = {p.name: p.stat().st_mtime_ns for p in bundled_dir.iterdir()}
    session = edited_session("scalar_chain")
    path = save_state(session)
    assert bundled_dir not in path.resolve().parents

    for target in (bundled_dir, bundled_dir / "sub"):
        monkeypatch.setenv(autosave.ENV_DATA_DIR, str(target))
        with pytest.raises(AutosaveError, match="bundled presets directory"):
            save_state(session)
    assert {p.name: p.stat().st_mtime_ns for p in bundled_dir.iterdir()} == before


def test_preset_name_cannot_escape_the_data_dir(data_dir):
    body = 'output = "J"\n[tensors.x]\nrole = "parameter"\nvalue = 1.0\n[[steps]]\nname = "J"\nexpr = "x * 2"\n'
    with pytest.raises(PresetError, match="name: '../../../etc/evil name' is not a valid name"):
        parse_preset('name = "../../../etc/evil name"\n' + body)
    # a name taken from a file's name is not checked as an identifier; the autosave's own name is still safe
    session = Session(parse_preset(body, default_name="../../../etc/evil name"))
    path = save_state(session)
    assert path.parent == data_dir / "sessions" and path.name.startswith("_________etc_evil_name-")


def test_default_location_is_the_platform_data_dir(monkeypatch):
    import platformdirs

    monkeypatch.delenv(autosave.ENV_DATA_DIR)
    assert autosave.data_dir() == platformdirs.user_data_path("backprop-tui", appauthor=False)


def test_unwritable_data_dir_is_an_autosave_error(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(autosave.ENV_DATA_DIR, str(blocker / "data"))
    with pytest.raises(AutosaveError, match="cannot autosave"):
        save_state(Session(bundled("scalar_chain")))


def test_clear_state():
    session = edited_session("scalar_chain")
    save_state(session)
    assert clear_state(session.preset) is True
    assert load_state(session.preset) is None
    assert clear_state(session.preset) is False


def test_saved_at_is_a_date_or_nothing():
    """saved_at is shown in the restore dialog: an escape sequence in it never reaches the
    terminal; a real date is written anew from its parsed value."""
    session = edited_session("scalar_chain")
    path = save_state(session)
    doc = json.loads(path.read_text())
    assert load_state(session.preset).saved_at == doc["saved_at"]
    for hostile, shown in (
        ("\x1b]0;pwned\x07\x1b[2J", ""),
        ("2026-01-02T03:04:05+00:00\x1b[2J", ""),
        (12, ""),
        ("2026-01-02T03:04:05+00:00", "2026-01-02T03:04:05+00:00"),
    ):
        doc["saved_at"] = hostile
        path.write_text(json.dumps(doc))
        assert load_state(session.preset).saved_at == shown


# ---------------------------------------------------------------- one file per explorer


def test_two_explorers_on_one_preset_write_two_files_and_both_are_offered(data_dir):
    first, second = autosave.new_instance(), autosave.new_instance()
    a = Session(bundled("linear_regression"))
    a.set_element("w", (), 1.5)
    b = Session(bundled("linear_regression"))
    b.set_element("w", (), 2.5)
    path_a, path_b = save_state(a, first), save_state(b, second)
    assert path_a != path_b and path_a.is_file() and path_b.is_file()
    os.utime(path_a, ns=(1, 1))  # a is the older one
    lookups = autosave.find_states(a.preset, exclude=autosave.new_instance())
    assert [lookup.path for lookup in lookups] == [path_b, path_a]
    assert [lookup.state.values for lookup in lookups] == [{"w": 2.5}, {"w": 1.5}]
    assert [lookup.path for lookup in autosave.find_states(a.preset, exclude=second)] == [path_a]  # not its own
    legacy = path_a.with_name(path_a.name.split(f"-{first}")[0] + ".json")  # one file a preset, as before
    path_a.rename(legacy)
    assert [lookup.path for lookup in autosave.find_states(a.preset, exclude=second)] == [legacy]


def test_the_file_of_an_explorer_that_still_runs_is_not_offered(data_dir):
    """Its explorer is still writing it: offering (and perhaps deleting) it would lose that work."""
    session = Session(bundled("linear_regression"))
    session.set_element("w", (), 1.5)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        running = save_state(session, f"{other.pid}-0123abcd")
        ended = save_state(session, f"{other.pid + 1_000_000}-0123abcd")  # no process has such an id
        assert [lookup.path for lookup in autosave.find_states(session.preset)] == [ended]
    finally:
        other.kill()
        other.wait()
    assert sorted(lookup.path for lookup in autosave.find_states(session.preset)) == sorted([running, ended])


def test_a_50000_step_history_is_kept_as_its_last_losses_and_always_loads(data_dir):
    session = Session(bundled("linear_regression"))
    losses = [1.0 / (1 + k) for k in range(50_001)]
    values = {"w": torch.tensor(0.25), "b": torch.tensor(-1.0)}
    session.apply_training(values, losses, 50_000, "train 50000 steps")
    path = save_state(session)
    assert path.stat().st_size < 40_000  # was about 1 MB, past what the reader takes for this preset
    state = load_state(session.preset)
    assert state is not None and state.steps_taken == 50_000
    assert list(state.loss_history) == session.sgd_losses[-autosave.MAX_SAVED_LOSSES:]
    fresh = Session(bundled("linear_regression"))
    restore(fresh, state)
    assert fresh.steps_taken == 50_000 and fresh.sgd_losses == losses[-autosave.MAX_SAVED_LOSSES:]
    assert fresh.values["w"].item() == 0.25 and fresh.snapshot.loss == session.snapshot.loss


def test_autosave_can_be_turned_off_by_the_environment():
    assert autosave.enabled({}) and autosave.enabled({"BACKPROP_TUI_AUTOSAVE": "1"})
    for off in ("0", "no", "off", "False", " 0 "):
        assert not autosave.enabled({"BACKPROP_TUI_AUTOSAVE": off})


def test_saved_at_is_drawn_printable_whatever_the_reader_lets_through():
    """The restore dialog escapes saved_at itself too: a state built by hand, not read from a file."""
    from backprop_tui.ui.persistence import saved_when

    state = autosave.SavedState("p", "f", "2026\x1b[2J\x9b31m" + "9" * 200, {}, {}, 0.1, (), 0)
    when = saved_when(state)
    assert when.isprintable() and "\\x1b[2J" in when and len(when) < 100
