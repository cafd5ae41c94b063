"""Engine bugs the fuzzers found outside the corpus, pinned as strict xfails.

test_fuzz.py leaves these inputs out (with `assume`); when the engine is fixed, these
tests pass, strict xfail turns that into a failure, and the marks (and the `assume`) go.
"""

from __future__ import annotations

import warnings

import pytest

from backprop_tui.engine import BackpropError, EditError, Session
from robustness_support import bundled, preset_from, state_of, unchanged

BUGS = {
    "whole float past int64 into a class index": ("classes", (0,), 1e30),
    "2**63 into a class index": ("classes", (0,), 2**63),
    "int past float range into a float leaf": ("X", (0, 0), 10**400),
}


@pytest.mark.xfail(strict=True, reason="session.set_element: torch.tensor(value, dtype=int64) overflows; "
                   "math.isfinite(huge int) raises OverflowError")
@pytest.mark.parametrize("case", sorted(BUGS))
def test_set_element_out_of_range_is_refused(case):
    name, index, value = BUGS[case]
    session = Session(bundled("softmax_classifier"))
    before = state_of(session)
    try:
        session.set_element(name, index, value)
    except EditError:
        assert unchanged(session, before)
        return
    except Exception as exc:
        pytest.fail(f"{type(exc).__name__} escaped: {exc}")
    pytest.fail("accepted")


@pytest.mark.xfail(strict=True, reason="ops.transpose allows '.T' on 0-D and 1-D tensors, which torch deprecates "
                   "(UserWarning: 'will throw an error in a future release'); refuse it or use a.mT / identity")
@pytest.mark.parametrize("expr", ["sum(v.T)", "x.T * 2"])
def test_transpose_below_two_dimensions_is_not_deprecated_torch(expr):
    text = (
        'output = "J"\n[tensors.x]\nrole = "parameter"\nvalue = 1.0\n'
        '[tensors.v]\nrole = "parameter"\nvalue = [1.0, 2.0]\n'
        f'[[steps]]\nname = "J"\nexpr = "{expr}"\n'
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a torch deprecation warning fails the test
        try:
            Session(preset_from(text))
        except BackpropError:
            pass  # refusing '.T' below two dimensions would be a fix as well
