"""Backward through matrix products in matrix form: every printed formula, read back from
its text and multiplied out with torch, equals autograd's gradient, at the printed shapes."""

from __future__ import annotations

import functools
import re

import pytest
import torch

from backprop_tui.engine import Session, load_preset, parse_preset, resolve_preset
from backprop_tui.engine.analysis.contributions import split_grad
from backprop_tui.engine.analysis.live import all_float_leaves, run_live
from backprop_tui.engine.analysis.matrix_form import matrix_forms

# C = A·Bᵀ + b, then D = Aᵀ·C: a transposed operand on either side, a broadcast bias,
# and A used by both products (each form is then one part of ∂J/∂A)
PRODUCTS = """
output = "J"
[tensors.A]
role = "parameter"
value = [[1.0, -2.0, 0.5], [3.0, 0.25, -1.0]]
[tensors.B]
role = "parameter"
value = [[0.5, 1.0, -1.5], [2.0, -0.5, 1.0], [-1.0, 0.75, 0.5], [0.1, 0.2, 0.3]]
[tensors.b]
role = "parameter"
value = [0.1, -0.2, 0.3, -0.4]
[[steps]]
name = "C"
expr = "A @ B.T + b"
[[steps]]
name = "D"
expr = "A.T @ C"
[[steps]]
name = "J"
expr = "sum(D * D) / 2"
"""


def session(name: str) -> Session:
    if name == "products":
        return Session(parse_preset(PRODUCTS))
    return Session(load_preset(resolve_preset(name)))


def evaluate(text: str, live, out: str) -> tuple[str, torch.Tensor, list[tuple[int, ...]], str]:
    """(the left side, the right side multiplied out in float64, the shapes the text
    prints, the shapes of the factors as the text names them)."""
    formula, shapes = text.split("   [", 1)
    lhs, rhs = formula.split(" = ", 1)
    printed = [tuple(int(n) for n in s.split("×")) for s in re.findall(r"\[([\d×]+)\]", "[" + shapes)]

    def tensor(name: str, grad: bool) -> torch.Tensor:
        t = live.grad(name) if grad else live.tensor(name)
        return t.detach().to(torch.float64)

    summed = re.fullmatch(rf"∂{out}/∂(\S+) summed over its (\d+) rows \((\S+) is added to each sample's row\)", rhs)
    if summed:
        g = tensor(summed.group(1), True)
        assert int(summed.group(2)) == g.shape[0]
        assert "Σ rows" in shapes
        return lhs, g.sum(0), printed, [tuple(g.shape)]
    factors, named = [], []
    for token in rhs.split(" · "):
        grad = re.fullmatch(rf"\(?∂{out}/∂([^\s)]+)\)?(ᵀ?)", token)
        value = re.fullmatch(r"(\S+?)(ᵀ?)", token)
        name, transposed, is_grad = (grad or value).group(1), (grad or value).group(2) == "ᵀ", bool(grad)
        t = tensor(name, is_grad)
        named.append(tuple(t.shape))
        factors.append(t.T if transposed else t)
    return lhs, functools.reduce(torch.matmul, factors), printed, named


@pytest.mark.parametrize("name", ["simple_nn", "attention_head", "makemore_backprop", "mlp_784", "products"])
def test_every_matrix_form_multiplies_out_to_autograds_gradient(name):
    s = session(name)
    live = run_live(s, all_float_leaves(s))  # inputs too: X's form is checked as well
    out = live.graph.preset.output
    checked = 0
    for node in live.trace.tensors:
        into, of = matrix_forms(s, node)
        for form in into + of:
            lhs, product, printed, named = evaluate(form.text, live, out)
            part = re.fullmatch(rf"(\S+)'s part of ∂{out}/∂(\S+)", lhs)
            if part:  # one consumer's vector-Jacobian product, as autograd computes it
                step, target = part.groups()
                expected = next(p.value for p in split_grad(live, target).contributions if p.consumer == step)
                expected = torch.from_numpy(expected.copy())
            else:
                target = lhs.removeprefix(f"∂{out}/∂")
                expected = live.grad(target)
            assert target == form.input and printed[0] == tuple(live.tensor(target).shape), form.text
            assert printed[1:] == named, form.text  # the shapes shown are the session's
            torch.testing.assert_close(product.reshape(expected.shape), expected.to(torch.float64),
                                       rtol=1e-5, atol=1e-7, msg=form.text)
            checked += 1
    assert checked >= {"products": 6, "attention_head": 8}.get(name, 9)


def test_the_forms_of_nn_linear_as_printed():
    s = session("simple_nn")
    into, of = matrix_forms(s, "linear1.weight")
    assert [f.text for f in into] == ["∂J/∂linear1.weight = (∂J/∂Z1)ᵀ · X   [3×2] = [2×3]ᵀ · [2×2]"]
    into, of = matrix_forms(s, "Z2")
    assert [f.text for f in of] == [
        "∂J/∂A1 = ∂J/∂Z2 · linear2.weight   [2×3] = [2×2] · [2×3]",
        "∂J/∂linear2.weight = (∂J/∂Z2)ᵀ · A1   [2×3] = [2×2]ᵀ · [2×3]",
        "∂J/∂linear2.bias = ∂J/∂Z2 summed over its 2 rows (linear2.bias is added to each sample's row)"
        "   [2] = Σ rows [2×2]",
    ]
    # X does not require grad in the session: no form claims a gradient for it
    assert matrix_forms(s, "X") == ([], [])
    assert [f.input for f in matrix_forms(s, "Z1")[1]] == ["linear1.weight", "linear1.bias"]


def test_the_forms_of_transposed_operands_as_printed():
    s = session("products")
    assert [f.text for f in matrix_forms(s, "C")[1]] == [
        "C's part of ∂J/∂A = ∂J/∂C · B   [2×3] = [2×4] · [4×3]",
        "∂J/∂B = (∂J/∂C)ᵀ · A   [4×3] = [2×4]ᵀ · [2×3]",
        "∂J/∂b = ∂J/∂C summed over its 2 rows (b is added to each sample's row)   [4] = Σ rows [2×4]",
    ]
    assert [f.text for f in matrix_forms(s, "D")[1]] == [
        "D's part of ∂J/∂A = C · (∂J/∂D)ᵀ   [2×3] = [2×4] · [3×4]ᵀ",
        "∂J/∂C = A · ∂J/∂D   [2×4] = [2×3] · [3×4]",
    ]
