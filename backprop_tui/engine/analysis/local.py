"""Local derivatives in words, symbols and numbers, and the chain rule line for a node.

Backprop multiplies, at every step, the grad arriving from above by the step's *local*
derivative. This module names that factor for each (step, input) edge: the rule
(`relu'(z) = 1 if z > 0 else 0`), the symbolic formula where the step is elementwise
(`d/dg g² = 2g`), and its value from torch (`= 18`), then writes the chain rule line
`∂f/∂h = ∂f/∂g · ∂g/∂h = 18 · 12 = 216` for a node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backprop_tui.engine.analysis import symbolic
from backprop_tui.engine.analysis.contributions import split_grad
from backprop_tui.engine.analysis.live import AnalysisError, Live, State, run_live, step_spec
from backprop_tui.engine.analysis.convolution import describe_kernel_grad
from backprop_tui.engine.analysis.formulas import evaluate_formula
from backprop_tui.engine.expr import BinOp, ModuleCall, Num, Ref
from backprop_tui.engine.format import format_array, format_shape
from backprop_tui.engine.numbers import fmt


@dataclass(frozen=True)
class LocalDerivative:
    """∂node/∂input with the step's other inputs held fixed.

    `rule` is the op's derivative in words; `formula` the symbolic derivative when the
    step is elementwise (None otherwise); `value` the number when node and input are
    scalars; `jacobian` ∂node/∂input from torch with shape node.shape + input.shape
    (None when larger than live.MAX_JACOBIAN_ENTRIES or the input is int); `used` is
    whether backprop actually sends a gradient along this edge under the current
    requires_grad flags; `text` is one line for the inspector.
    """

    node: str
    input: str
    symbol: str
    rule: str
    formula: str | None
    value: float | None
    jacobian: np.ndarray | None
    used: bool
    text: str
    # one number per element of the input (its shape): of a pointwise step ∂node[k]/∂input[k]
    # from the formula (the Jacobian's diagonal, every other entry 0), of a scalar step its
    # gradient from torch; None otherwise or where the formula is a constant
    elementwise: np.ndarray | None = None


@dataclass(frozen=True)
class ChainTerm:
    """One consumer's part of the chain rule for a node: upstream grad × local derivative."""

    consumer: str
    symbol: str  # "∂f/∂g · ∂g/∂h"
    upstream: np.ndarray  # ∂output/∂consumer, from backward
    local: LocalDerivative
    contribution: np.ndarray  # the vector-Jacobian product, from torch (contributions.py)


@dataclass(frozen=True)
class ChainRule:
    """The chain rule for one node, as a line of text and as its terms."""

    node: str
    text: str
    terms: tuple[ChainTerm, ...]
    grad: np.ndarray | None

    @property
    def head(self) -> str:
        """The text without the grad's elements at its end, for a tensor's grad shown as a
        matrix elsewhere (the same as `text` for a scalar)."""
        if self.grad is None or self.grad.size <= 1 or not self.terms:
            return self.text
        tail = f" = {format_array(self.grad)}"
        return self.text[: -len(tail)] if self.text.endswith(tail) else self.text


def local_derivatives(state: State, name: str) -> tuple[LocalDerivative, ...]:
    """The local derivative of step `name` with respect to each of its inputs (() for leaves)."""
    live = run_live(state)
    return tuple(local_derivative(live, name, i) for i in live.graph.inputs[_known(live, name)])


def chain_rule(state: State, name: str) -> ChainRule:
    """`∂f/∂h = ∂f/∂g · ∂g/∂h = 18 · 12 = 216` for node `name`, with its terms."""
    return chain_rule_live(run_live(state), name)


def _known(live: Live, name: str) -> str:
    if name not in live.trace.tensors:
        raise AnalysisError(f"unknown node {name!r}")
    return name


# ---------------------------------------------------------------- on a Live


def local_derivative(live: Live, node: str, input_name: str) -> LocalDerivative:
    local = live.local(node)
    out_t, in_t = local.output, local.inputs[input_name]
    jac = local.jacobian(input_name) if in_t.is_floating_point() else None
    value = float(jac.reshape(-1)[0]) if jac is not None and out_t.numel() == 1 and in_t.numel() == 1 else None
    used = live.has_grad(input_name) and live.grad(node) is not None
    symbol = f"∂{node}/∂{input_name}"
    tree = step_spec(live.graph.preset, node).expr.tree
    rule, formula, head = _describe(live, node, tree, input_name)
    elementwise = None if value is not None else _elementwise(tree, input_name, local)
    if not in_t.is_floating_point():
        text = f"{symbol}: none, {input_name} holds class indices (int)"
    else:
        text = head
        if value is not None:
            if not _same_number(formula, value):
                text += f" = {fmt(value)}"
        elif jac is not None and out_t.numel() == 1:  # a scalar of a tensor: its gradient, drawn as a matrix
            elementwise = jac.astype(np.float32).reshape(tuple(in_t.shape))
            elementwise.setflags(write=False)
            text += f", at each element of {input_name}:"
        elif elementwise is not None:
            text += f", element by element (the {format_shape(tuple(out_t.shape) * 2)} Jacobian is diagonal)"
        elif jac is not None:
            text += f" (a {format_shape(tuple(jac.shape))} Jacobian)"
    return LocalDerivative(node, input_name, symbol, rule, formula, value, jac, used, text, elementwise)


def _elementwise(tree, input_name: str, local) -> np.ndarray | None:
    """The derivative's formula (the registry's local formulas, composed by the chain rule)
    evaluated at every element of a pointwise step's input of the step's own shape."""
    out_t, in_t = local.output, local.inputs[input_name]
    if not (local.pointwise and in_t.is_floating_point() and out_t.shape == in_t.shape):
        return None
    try:
        d = symbolic.derivative(tree, input_name)
    except symbolic.NotElementwise:
        return None
    if isinstance(d, Num):
        return None  # a constant: the formula is its value
    values = evaluate_formula(d, {name: t.detach() for name, t in local.inputs.items()})
    array = values.to(in_t.dtype).expand(in_t.shape).numpy().copy()
    array.setflags(write=False)
    return array


def _describe(live: Live, node: str, tree, input_name: str) -> tuple[str, str | None, str]:
    """(rule in words, symbolic formula or None, the text before the number)."""
    module_types = {m.name: m.type for m in live.graph.preset.modules}
    rules = "; ".join(symbolic.RULES[op] for op in symbolic.ops_in(tree, module_types))
    if isinstance(tree, ModuleCall) and isinstance(tree.arg, Ref) and module_types[tree.module] == "Linear":
        x = tree.arg.name
        module = tree.module
        if input_name == f"{module}.weight":
            words = f"∂{node}[i,j]/∂W[j,k] = {x}[i,k]"
        elif input_name == f"{module}.bias":
            words = f"∂{node}[i,j]/∂b[j] = 1"
        else:
            words = f"∂{node}[i,j]/∂{x}[i,k] = W[j,k]"
        return rules, None, f"{node} = {module}({x}) = {x}·Wᵀ + b: {words}"
    if (
        isinstance(tree, ModuleCall) and isinstance(tree.arg, Ref)
        and module_types[tree.module] in ("Conv1d", "Conv2d")
        and input_name == f"{tree.module}.weight" and live.grad(node) is not None
    ):
        spec = next(m for m in live.graph.preset.modules if m.name == tree.module)
        x = live.tensor(tree.arg.name).detach().numpy()
        text, _ = describe_kernel_grad(node, tree.arg.name, tree.module, dict(spec.options),
                                       x, live.grad(node).detach().numpy(), int(spec.type[4]))
        return rules, None, text
    try:
        formula = symbolic.show(symbolic.derivative(tree, input_name), display=True)
    except symbolic.NotElementwise:
        return rules, None, f"∂{node}/∂{input_name}: {rules or 'PyTorch differentiates each op in turn'}"
    shown = symbolic.show(tree, display=True)
    if isinstance(tree, BinOp) and tree.op in "+-":
        shown = f"({shown})"
    head = f"d/d{input_name} {shown} = {formula}"
    if rules:
        head += f"  [{rules}]"
    return rules, formula, head


def chain_rule_live(live: Live, name: str) -> ChainRule:
    _known(live, name)
    out = live.graph.preset.output
    split = split_grad(live, name)
    grad = split.grad
    if name == out and grad is not None:
        return ChainRule(name, f"∂{out}/∂{out} = 1 (the output: backward starts here)", (), grad)
    if not split.contributions:
        return ChainRule(name, split.reason, (), grad)
    terms = []
    for part in split.contributions:
        local = local_derivative(live, part.consumer, name)
        upstream = live.grad(part.consumer).detach().numpy().copy()
        direct = part.consumer == out
        symbol = f"∂{out}/∂{name} (direct)" if direct else f"∂{out}/∂{part.consumer} · ∂{part.consumer}/∂{name}"
        terms.append(ChainTerm(part.consumer, symbol, upstream, local, part.value))
    return ChainRule(name, _chain_text(out, name, terms, grad), tuple(terms), grad)


def _chain_text(out: str, name: str, terms: list[ChainTerm], grad: np.ndarray) -> str:
    lhs = f"∂{out}/∂{name}"
    scalar = all(t.local.value is not None and t.upstream.size == 1 for t in terms)
    if len(terms) == 1 and terms[0].consumer == out:  # ∂f/∂f = 1, so the local derivative is all
        local = terms[0].local
        middle = f" = {local.formula}" if local.formula and not _same_number(local.formula, local.value) else ""
        return f"{lhs}{middle} = {format_array(grad)}"
    symbols = " + ".join(t.symbol for t in terms)
    if scalar:
        numbers = " + ".join(
            fmt(t.local.value) if t.consumer == out else f"{fmt(float(t.upstream))} · {fmt(t.local.value)}"
            for t in terms
        )
        return f"{lhs} = {symbols} = {numbers} = {fmt(float(grad))}"
    products = "vector-Jacobian product" + ("s" if len(terms) > 1 else "")
    return f"{lhs} = {symbols} ({products}) = {format_array(grad)}"


def _same_number(formula: str | None, value: float | None) -> bool:
    """True when the formula is the number itself ("1"), so "= 1 = 1" is not written."""
    return formula is not None and value is not None and formula.replace("−", "-") == fmt(value)
