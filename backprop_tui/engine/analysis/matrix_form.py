"""Backward through a matrix product in matrix form, with the shapes of this session.

For C = L·R (a step `A @ B`, `A @ B.T`, `A @ B + b`, or an nn.Linear, Z = X·Wᵀ + b),
backprop never builds the 4-d Jacobians: it multiplies matrices. With G = ∂J/∂C,

    ∂J/∂L = G·Rᵀ      ∂J/∂R = Lᵀ·G      ∂J/∂b = G summed over its rows (b is added to each)

and where L or R is a transposed node (Wᵀ in nn.Linear), the node's grad is the
transpose of that: ∂J/∂W = Gᵀ·X. A `MatrixForm` holds the product as factors (a node's
value or grad, transposed or not) and its text with the shapes; tests multiply the
factors of the text with torch and compare with autograd's grad.
"""

from __future__ import annotations

from dataclasses import dataclass

from backprop_tui.engine.analysis.live import Live, State, run_live, step_spec
from backprop_tui.engine.expr import BinOp, ModuleCall, Ref, Transpose
from backprop_tui.engine.format import format_shape


@dataclass(frozen=True)
class Factor:
    """A node's value (or its grad ∂out/∂node, when `grad`), transposed or not."""

    node: str
    grad: bool
    transposed: bool
    shape: tuple[int, ...]  # the node's own shape


@dataclass(frozen=True)
class MatrixForm:
    """∂out/∂input through `step`: the product of `factors`, or the rows of one summed."""

    step: str
    input: str
    factors: tuple[Factor, ...]
    rows_summed: bool  # a broadcast bias: the one factor summed over its rows (the samples)
    text: str  # "∂J/∂W = (∂J/∂Z)ᵀ · X   [3×2] = [2×3]ᵀ · [2×2]"


@dataclass(frozen=True)
class _Operand:
    node: str
    transposed: bool  # the product uses the node's transpose (`W.T`, nn.Linear's W)


def matrix_form(live: Live, step: str, input_name: str) -> MatrixForm | None:
    """The matrix form of step's backward to `input_name`; None when the step is no 2-d
    matrix product of named nodes, or no gradient flows along this edge. When the input
    has other consumers that send gradients back, the form is this step's part of its grad."""
    if live.grad(step) is None or not live.has_grad(input_name):
        return None
    parts = _product(live, step)
    if parts is None:
        return None
    left, right, bias = parts
    if left.node == right.node or live.tensor(left.node).dim() != 2 or live.tensor(right.node).dim() != 2:
        return None
    out = live.graph.preset.output
    senders = [c for c in live.graph.consumers[input_name] if live.grad(c) is not None and live.has_grad(c)]
    lhs = f"∂{out}/∂{input_name}" if senders == [step] else f"{step}'s part of ∂{out}/∂{input_name}"
    grad = _Operand(step, False)
    if input_name == left.node:  # ∂J/∂L = G·Rᵀ; of A where L = Aᵀ, its transpose R·Gᵀ
        factors = [grad, _flip(right)] if not left.transposed else [right, _flip(grad)]
    elif input_name == right.node:  # ∂J/∂R = Lᵀ·G; of B where R = Bᵀ, Gᵀ·L
        factors = [_flip(left), grad] if not right.transposed else [_flip(grad), left]
    elif input_name == bias and _broadcast_over_rows(live, bias, step):
        g = _factor(live, grad, step)
        rows = live.tensor(step).shape[0]
        text = (f"{lhs} = ∂{out}/∂{step} summed over its {rows} rows ({bias} is added to each sample's row)"
                f"   [{format_shape(_shape(live, bias))}] = Σ rows [{_shape_text(g)}]")
        return MatrixForm(step, bias, (g,), True, text)
    else:
        return None
    shown = tuple(_factor(live, f, step) for f in factors)
    symbols = " · ".join(_symbol(f, out) for f in shown)
    shapes = " · ".join(f"[{_shape_text(f)}]" + ("ᵀ" if f.transposed else "") for f in shown)
    text = f"{lhs} = {symbols}   [{format_shape(_shape(live, input_name))}] = {shapes}"
    return MatrixForm(step, input_name, shown, False, text)


def matrix_forms_of(live: Live, step: str) -> list[MatrixForm]:
    """The forms of a step's backward to each of its inputs (none if it is no product)."""
    forms = (matrix_form(live, step, name) for name in live.graph.inputs.get(step, ()))
    return [f for f in forms if f is not None]


def _product(live: Live, step: str) -> tuple[_Operand, _Operand, str | None] | None:
    """(L, R, bias) of a step C = L·R (+ bias), or None."""
    if step not in {s.name for s in live.graph.preset.steps}:
        return None
    tree = step_spec(live.graph.preset, step).expr.tree
    if isinstance(tree, ModuleCall):
        spec = next(m for m in live.graph.preset.modules if m.name == tree.module)
        if spec.type != "Linear" or not isinstance(tree.arg, Ref):
            return None
        bias = f"{spec.name}.bias" if spec.has_bias else None
        return _Operand(tree.arg.name, False), _Operand(f"{spec.name}.weight", True), bias
    bias = None
    if isinstance(tree, BinOp) and tree.op == "+":
        for product, other in ((tree.left, tree.right), (tree.right, tree.left)):
            if _is_matmul(product) and isinstance(other, Ref):
                tree, bias = product, other.name
                break
    if not _is_matmul(tree):
        return None
    return _operand(tree.left), _operand(tree.right), bias


def _is_matmul(tree) -> bool:
    return (isinstance(tree, BinOp) and tree.op == "@"
            and _operand(tree.left) is not None and _operand(tree.right) is not None)


def _operand(tree) -> _Operand | None:
    if isinstance(tree, Ref):
        return _Operand(tree.name, False)
    if isinstance(tree, Transpose) and isinstance(tree.operand, Ref):
        return _Operand(tree.operand.name, True)
    return None


def _broadcast_over_rows(live: Live, bias: str, step: str) -> bool:
    """b of shape [n] or [1×n], added to each row of a step of shape [rows×n]."""
    shape, out = _shape(live, bias), tuple(live.tensor(step).shape)
    return len(out) == 2 and out[0] > 1 and shape in ((out[1],), (1, out[1]))


def _flip(operand: _Operand) -> _Operand:
    return _Operand(operand.node, not operand.transposed)


def _factor(live: Live, operand: _Operand, step: str) -> Factor:
    return Factor(operand.node, operand.node == step, operand.transposed, _shape(live, operand.node))


def _shape(live: Live, name: str) -> tuple[int, ...]:
    return tuple(live.tensor(name).shape)


def _shape_text(factor: Factor) -> str:
    return format_shape(factor.shape)


def _symbol(factor: Factor, out: str) -> str:
    if factor.grad:
        return f"(∂{out}/∂{factor.node})ᵀ" if factor.transposed else f"∂{out}/∂{factor.node}"
    return f"{factor.node}ᵀ" if factor.transposed else factor.node


def matrix_forms(state: State, name: str) -> tuple[list[MatrixForm], list[MatrixForm]]:
    """The forms that give node `name` its grad (from each product that consumes it), and
    those of its own backward to its inputs when it is a product."""
    live = run_live(state)
    into = (matrix_form(live, consumer, name) for consumer in live.graph.consumers.get(name, ()))
    return [f for f in into if f is not None], matrix_forms_of(live, name)
