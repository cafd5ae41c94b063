"""Shared by the robustness suites: the outcome log behind tests/robustness/report.py.

Tests record how many cases they tried and how many held with `tally` (a thin layer on
pytest's `record_property`). When the environment variable below names a file, every
test's outcome and tally is written there as JSON at the end of the run;
tests/robustness/report.py turns that into its tables.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pytest

REPORT_ENV = "BACKPROP_TUI_ROBUSTNESS_JSON"
_OUTCOMES: list[dict] = []


@dataclass
class Count:
    tried: int = 0
    held: int = 0


@pytest.fixture
def tally(record_property):
    """A Count whose numbers are recorded with the test's outcome, whatever it is."""
    count = Count()
    yield count
    record_property("tried", count.tried)
    record_property("held", count.held)


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        if report.outcome == "skipped" and hasattr(report, "wasxfail"):
            outcome = "xfailed"
        elif report.outcome == "passed" and hasattr(report, "wasxfail"):
            outcome = "xpassed"
        else:
            outcome = report.outcome
        reason = getattr(report, "wasxfail", "")
        _OUTCOMES.append(
            {"nodeid": report.nodeid, "outcome": outcome, "reason": reason, "props": dict(report.user_properties)}
        )
    elif report.when == "teardown" and _OUTCOMES and _OUTCOMES[-1]["nodeid"] == report.nodeid:
        # properties recorded in fixture teardown (the tally) arrive with this report
        _OUTCOMES[-1]["props"].update(dict(report.user_properties))


def pytest_sessionfinish(session):
    path = os.environ.get(REPORT_ENV)
    if path and _OUTCOMES:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(_OUTCOMES, handle, indent=1)
