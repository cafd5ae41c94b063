"""Settings of the whole Python process, made once where a run of backprop-tui starts
(cli.main, ui.app.run_app) and put back when it ends: never in an engine object or a
widget, where a library user or a test would get them without asking.
"""

from __future__ import annotations

import gc
import os
import sys
import warnings
from contextlib import contextmanager
from typing import Iterator

# The explorer's garbage collection (ui.collector collects in full once edits pause):
YOUNG = 10_000  # allocations between young collections (Python's 700: an edit allocates thousands)
FULL_EVERY = 1000  # generation-1 collections between automatic full ones (Python's 10: they fell inside edits)
# The UI thread waits at most this long for the GIL while a worker runs Python (Python's 5 ms).
SWITCH_INTERVAL = 0.001


@contextmanager
def torch_threads(count: int = 1) -> Iterator[None]:
    """torch computes with `count` threads: an explorer's tensors are small, one thread is as
    fast as two and leaves the other core to the UI; two on a busy machine stall."""
    if "torch" in sys.modules:
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(count)
        try:
            yield
        finally:
            torch.set_num_threads(before)
        return
    before_env = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(count)  # read by torch when it is imported (in a worker)
    try:
        yield
    finally:
        if before_env is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = before_env


@contextmanager
def quiet_warnings() -> Iterator[None]:
    """No library warning reaches the user's terminal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@contextmanager
def explorer_settings() -> Iterator[None]:
    """For a run of the explorer: its garbage-collection thresholds and GIL switch interval."""
    thresholds, switch = gc.get_threshold(), sys.getswitchinterval()
    gc.set_threshold(YOUNG, thresholds[1], FULL_EVERY)
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(switch)
