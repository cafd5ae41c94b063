"""Process-wide settings are made by the entry points and put back when they return."""

from __future__ import annotations

import gc
import os
import sys
import warnings

from backprop_tui import cli, process


def test_explorer_settings_are_set_inside_and_restored_after():
    thresholds, switch = gc.get_threshold(), sys.getswitchinterval()
    with process.explorer_settings():
        assert gc.get_threshold() == (process.YOUNG, thresholds[1], process.FULL_EVERY)
        assert sys.getswitchinterval() == process.SWITCH_INTERVAL
    assert gc.get_threshold() == thresholds
    assert sys.getswitchinterval() == switch


def test_torch_threads_and_warnings_are_restored():
    import torch

    before = torch.get_num_threads()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with process.quiet_warnings(), process.torch_threads(1):
            assert torch.get_num_threads() == 1
            warnings.warn("hidden", stacklevel=1)
        warnings.warn("shown", stacklevel=1)
    assert [str(w.message) for w in seen] == ["shown"]
    assert torch.get_num_threads() == before


def test_before_torch_is_imported_the_thread_count_goes_through_the_environment(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    with process.torch_threads(1):
        assert os.environ["OMP_NUM_THREADS"] == "1"
    assert os.environ["OMP_NUM_THREADS"] == "3"


def test_the_command_line_leaves_the_process_as_it_found_it(capsys):
    filters = list(warnings.filters)
    assert cli.main(["presets"]) == 0
    assert warnings.filters == filters
    assert "scalar_chain" in capsys.readouterr().out
