"""The chain rule for one scalar node, with the numbers PyTorch computes.

    ∂out/∂n = Σ over consumers c of  ∂out/∂c · ∂c/∂n

The upstream factors ∂out/∂c are the gradients already in the snapshot. The local
factors ∂c/∂n (c's own operation, every other named node held fixed) are not, and
`torch.autograd.grad(c, n)` would give the total derivative instead (in f = x*y + x it
adds the path through p). So the forward pass is re-run and c's backward functions are
called one by one, from c.grad_fn down to where they reach another named node, exactly
as autograd's engine would, stopping at the named-node boundaries. Each derivative is
torch's own backward function; nothing is derived by hand. torch is imported lazily.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backprop_tui.engine import Session


@dataclass(frozen=True)
class Term:
    consumer: str
    upstream: float | None  # ∂out/∂consumer when the consumer is a scalar, else None
    local: float | None  # ∂consumer/∂node when the consumer is a scalar, else None
    contribution: float  # upstream · local, or the vector-Jacobian product for a tensor consumer


@dataclass(frozen=True)
class ChainRule:
    output: str
    node: str
    terms: tuple[Term, ...]
    total: float  # the sum of the contributions
    grad: float  # what backward() stored in node.grad: they agree up to float32 rounding


def chain_rule(session: "Session", name: str) -> ChainRule | str | None:
    """The chain rule for `name`, a sentence saying why there is none, or None for tensors."""
    snapshot = session.snapshot
    node = snapshot.node(name)
    output = snapshot.output
    if node.value.size != 1:
        return None
    if name == output:
        return f"∂{output}/∂{output} = 1: backward() starts here"
    if node.grad is None:
        if node.is_leaf and not node.requires_grad:
            return f"no grad: {name} does not require grad, so autograd computes nothing for it"
        if not node.requires_grad:
            return f"no grad: nothing {name} depends on requires grad"
        return f"no grad: {output} does not depend on {name}"
    import torch

    trace = session.graph.forward(session.values, session.requires_grad)
    named = {id(t.grad_fn) for t in trace.tensors.values() if t.grad_fn is not None}
    tensor = trace.tensors[name]
    terms = []
    for consumer_name in node.consumers:
        consumer = snapshot.node(consumer_name)
        produced = trace.tensors[consumer_name]
        if consumer.grad is None or produced.grad_fn is None:
            continue  # not on a path to the output: contributes nothing
        upstream = torch.from_numpy(consumer.grad.copy()).to(produced.dtype)
        if produced.numel() == 1:
            local = edge_gradient(produced, torch.ones_like(produced), tensor, named)
            up = float(upstream.reshape(-1)[0])
            terms.append(Term(consumer_name, up, local, up * local))
        else:
            contribution = edge_gradient(produced, upstream, tensor, named)
            terms.append(Term(consumer_name, None, None, contribution))
    total = sum(t.contribution for t in terms)
    return ChainRule(output, name, tuple(terms), total, float(node.scalar_grad()))


def edge_gradient(produced, grad_output, target, named: set[int]) -> float:
    """Backpropagate `grad_output` from `produced` through its own (unnamed) functions only.

    Returns the sum of the gradient that reaches `target` along the direct edge: what
    its AccumulateGrad (a leaf) or its grad_fn (an intermediate) receives from this
    consumer. Propagation stops at every named node (`named`: their grad_fn ids) and at
    every leaf, so paths through other named nodes are left out.
    """
    import torch

    start = produced.grad_fn

    def is_boundary(fn) -> bool:
        return fn is not start and (id(fn) in named or type(fn).__name__ == "AccumulateGrad")

    def is_target(fn) -> bool:
        if target.grad_fn is not None:
            return fn is target.grad_fn
        return type(fn).__name__ == "AccumulateGrad" and fn.variable is target

    # In-degrees inside the sub-graph, so each function runs once with all its gradient
    # summed, as autograd's engine does (Kahn's topological order).
    indegree: dict[int, int] = {}
    stack = [start]
    seen = {id(start)}
    while stack:
        fn = stack.pop()
        if is_boundary(fn):
            continue
        for child, _ in fn.next_functions:
            if child is None:
                continue
            indegree[id(child)] = indegree.get(id(child), 0) + 1
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    ready = [start]
    grads: dict[int, object] = {id(start): grad_output}
    reached = 0.0
    with torch.no_grad():
        while ready:
            fn = ready.pop()
            grad = grads.pop(id(fn), None)
            if is_boundary(fn):
                if grad is not None and is_target(fn):
                    reached += float(grad.sum())
                continue
            outputs = fn(grad) if grad is not None else None
            if outputs is not None and not isinstance(outputs, tuple):
                outputs = (outputs,)
            for position, (child, _) in enumerate(fn.next_functions):
                if child is None:
                    continue
                out = None if outputs is None else outputs[position]
                if out is not None:
                    before = grads.get(id(child))
                    grads[id(child)] = out if before is None else before + out
                indegree[id(child)] -= 1
                if indegree[id(child)] == 0:
                    ready.append(child)
    return reached
