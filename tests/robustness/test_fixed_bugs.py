"""Engine bugs the fuzzers found outside the corpus, fixed in 1515e9a: their regression tests.

Until the fix these were strict xfails, and test_fuzz.py left their inputs out with
`assume`; now the fuzzers draw them like any other input. A bug found and not fixed yet
is pinned here (or as a `bug_` file of the corpus) as a strict xfail.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from backprop_tui.engine import EditError, Session, parse_preset
from robustness_support import bundled, state_of, unchanged

# case -> (leaf, index, value, the whole message)
OUT_OF_RANGE = {
    "whole float past int64 into a class index": (
        "classes", (0,), 1e30, "classes[0]: 1e+30 is out of range for a class index",
    ),
    "2**63 into a class index": (
        "classes", (0,), 2**63, "classes[0]: 9223372036854775808 is out of range for a class index",
    ),
    "-2**63 into a class index": (
        "classes", (0,), -(2**63), "classes[0]: -9223372036854775808 is out of range for a class index",
    ),
    "int past float range into a float leaf": (
        "X", (0, 0), 10**400, "X[0,0]: 100000000000… (401 digits) is not a finite number in float32 range",
    ),
    "int just past float32 into a float leaf": (
        "X", (0, 0), 10**39, "X[0,0]: 100000000000… (40 digits) is not a finite number in float32 range",
    ),
}


@pytest.mark.parametrize("case", sorted(OUT_OF_RANGE))
def test_set_element_out_of_range_is_refused(case, record_property):
    """Session.set_element: ints past int64 or float32 are an EditError (an OverflowError escaped before)."""
    name, index, value, message = OUT_OF_RANGE[case]
    record_property("expected", message)
    session = Session(bundled("softmax_classifier"))
    before = state_of(session)
    with pytest.raises(EditError) as refused:
        session.set_element(name, index, value)
    assert str(refused.value) == message
    assert unchanged(session, before)


def test_negative_huge_int_counts_its_digits():
    """The shortened form of a huge negative int names how many digits it has."""
    session = Session(bundled("softmax_classifier"))
    with pytest.raises(EditError) as refused:
        session.set_element("X", (0, 0), -(10**400))
    assert "(401 digits)" in str(refused.value)


@pytest.mark.parametrize("expr", ["sum(v.T)", "x.T * 2", "sum((v * x).T)"])
def test_transpose_below_two_dimensions_avoids_deprecated_torch(expr, monkeypatch):
    """'.T' of a scalar or a vector is the tensor itself, without torch's deprecated Tensor.T.

    Torch warns only once per process, so this watches the calls of Tensor.T instead of the warning.
    """
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
        warnings.simplefilter("error")
        session = Session(parse_preset(text))
        session.set_element("x", (), 3.0)  # and a recompute after an edit
    assert below_two == []
    assert session.snapshot.finite


CONSTANT_STEP = """
output = "J"
[tensors.x]
role = "parameter"
value = 1.0
[[steps]]
name = "E"
expr = "2 * 3"
[[steps]]
name = "J"
expr = "E + x"
"""


@pytest.mark.parametrize("cost", ["E + x", "E"])
def test_step_of_constants_alone_computes(cost):
    """A step of constants alone is a tensor like any other (at 1515e9a an AttributeError escaped
    Graph.forward: the step was a Python float; found by the fuzzers once they drew every input)."""
    session = Session(parse_preset(CONSTANT_STEP.replace('"E + x"', f'"{cost}"')))
    nodes = {node.name: node for node in session.snapshot.nodes}
    assert float(nodes["E"].value) == 6.0 and nodes["E"].grad is None
    assert session.snapshot.loss == (7.0 if cost == "E + x" else 6.0)
    session.set_element("x", (), 2.0)
    assert session.snapshot.loss == (8.0 if cost == "E + x" else 6.0)
