"""Engine bugs the fuzzers found outside the corpus, pinned as strict xfails.

test_fuzz.py leaves these inputs out (with `assume`); when the engine is fixed, these
tests pass, strict xfail turns that into a failure, and the marks (and the `assume`) go.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from backprop_tui.engine import BackpropError, EditError, Session, parse_preset
from robustness_support import bundled, state_of, unchanged

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
                   "(UserWarning: 'will throw an error in a future release'); refuse it, or return such tensors as they are")
@pytest.mark.parametrize("expr", ["sum(v.T)", "x.T * 2"])
def test_transpose_below_two_dimensions_avoids_deprecated_torch(expr, monkeypatch):
    """Torch warns only once per process, so this watches the calls of Tensor.T instead of the warning."""
    below_two = []
    real_t = torch.Tensor.T

    def watched_t(tensor):
        if tensor.dim() < 2:
            below_two.append(tuple(tensor.shape))
        return real_t.__get__(tensor)

    text = (
        'output = "J"\n[tensors.x]\nrole = "parameter"\nvalue = 1.0\n'
        '[tensors.v]\nrole = "parameter"\nvalue = [1.0, 2.0]\n'
        f'[[steps]]\nname = "J"\nexpr = "{expr}"\n'
    )
    monkeypatch.setattr(torch.Tensor, "T", property(watched_t))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            Session(parse_preset(text))
        except BackpropError:
            pass  # refusing '.T' below two dimensions would be a fix as well
    assert below_two == []
