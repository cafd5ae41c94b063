"""Every path from one leaf element to the output, and the product along each.

The chain rule in its "sum over paths" form: ∂out/∂x is the sum, over every path from
x to the output, of the product of the local derivatives along the path. Paths run
through tensor *elements* (W1[0,1] → Z1[1,0] → A1[1,0] → …); each factor is an entry
of a step's local Jacobian, computed by torch on that step alone (live.LocalStep).
Where there are too many paths to list, a summary (counts and sums per route of nodes)
is given instead; the sums are still exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from backprop_tui.engine.analysis.live import (
    Live,
    State,
    check_leaf_element,
    element_label,
    run_live,
    vjp,
)
from backprop_tui.engine.numbers import fmt
from backprop_tui.engine.session import Index, format_index

MAX_PATHS = 64
MAX_ROUTES = 64


@dataclass(frozen=True)
class PathStep:
    element: str  # "Z1[1,0]"
    local: float  # ∂(this element)/∂(previous element)


@dataclass(frozen=True)
class Path:
    steps: tuple[PathStep, ...]  # after the source element, ending at the output
    product: float
    text: str  # "x → h → g → f: 1 × 12 × 18 = 216"


@dataclass(frozen=True)
class Route:
    """A path of nodes; `n_paths` element paths follow it and their products add to `total`.

    Both are None when a tensor on the route is too large for its Jacobian to be built.
    """

    nodes: tuple[str, ...]
    n_paths: int | None
    total: float | None


@dataclass(frozen=True)
class Paths:
    source: str  # "W1[0,1]"
    paths: tuple[Path, ...]  # every path, or () when there are more than max_paths
    n_paths: int | None  # None when too large to count
    routes: tuple[Route, ...]  # () when there are more than MAX_ROUTES
    n_routes: int
    total: float | None  # the sum of all path products (float64)
    derivative: float  # ∂output/∂source from autograd (also when the leaf does not require grad)
    grad: float | None  # the same number as the user's snapshot shows it; None without requires_grad
    summary: str

    @property
    def listed(self) -> bool:
        return bool(self.paths) or self.n_paths == 0


def paths(state: State, name: str, index: Index | None = None, max_paths: int = MAX_PATHS) -> Paths:
    """All paths from leaf element `name[index]` to the output (a summary beyond max_paths)."""
    index = check_leaf_element(state, name, index)
    # the user's flags: the pass every other analysis of the state shares (deep_chain:
    # one forward and backward of 500 steps less); the local steps make every input
    # require grad, so inputs have paths too
    live = run_live(state)
    graph = live.graph
    out = graph.preset.output
    source = format_index(name, index)
    shapes = {n: tuple(t.shape) for n, t in live.trace.tensors.items()}
    flat = int(np.ravel_multi_index(index, shapes[name])) if index else 0
    nodes = _on_routes(live, name)  # topological order, from the source to the output
    derivative = _derivative(state, live, name, nodes)
    derivative = float(derivative.reshape(-1)[flat]) if derivative is not None else 0.0
    grad = derivative if state.requires_grad.get(name) else None

    n_routes, routes = _routes(live, name, nodes)
    if not nodes:
        return Paths(
            source, (), 0, (), 0, 0.0, derivative, grad, f"{source} does not reach {out}: no path, ∂{out}/∂{source} = 0"
        )

    edges = _edges(live, nodes)
    if edges is None:  # some Jacobian too large to build
        summary = (
            f"{source} reaches {out} along {_count(n_routes, 'route')} of nodes, through tensors too large to "
            f"list element paths; all paths together give ∂{out}/∂{source} = {fmt(derivative)} (autograd)"
        )
        return Paths(
            source, (), None, tuple(Route(r, None, None) for r in routes), n_routes, None, derivative, grad, summary
        )

    counts, sums = _forward_dp(nodes, edges, name, flat, shapes)
    n_paths = exact_count(counts[out][0])
    total = float(sums[out][0])
    route_list = tuple(_route_totals(r, edges, flat, shapes) for r in routes)
    if n_paths is None:  # past 2**53, a float64 count is not a whole number of paths any more
        summary = (
            f"about {fmt(float(counts[out][0]), 3)} paths from {source} to {out} (too many to count exactly) "
            f"along {_count(n_routes, 'route')} of nodes; their products add up to {fmt(total)} = ∂{out}/∂{source}"
        )
        return Paths(source, (), None, route_list, n_routes, total, derivative, grad, summary)
    listed: tuple[Path, ...] = ()
    if n_paths <= max_paths:
        listed = tuple(_enumerate(nodes, edges, name, flat, shapes, out))
    if n_paths == 0:
        summary = (
            f"no element path from {source} to {out} carries a gradient: each is cut by a zero "
            f"local derivative (a dead ReLU, say), so ∂{out}/∂{source} = {fmt(derivative)}"
        )
        return Paths(source, (), 0, route_list, n_routes, 0.0, derivative, grad, summary)
    what = f"{_count(n_paths, 'path')} from {source} to {out}"
    if n_paths > max_paths:
        what += f" (more than {max_paths} to list) along {_count(n_routes, 'route')} of nodes"
    summary = f"{what}; their products add up to {fmt(total)} = ∂{out}/∂{source}"
    return Paths(source, listed, n_paths, route_list, n_routes, total, derivative, grad, summary)


def _derivative(state: State, live: Live, name: str, nodes: list[str]) -> torch.Tensor | None:
    """∂output/∂name from autograd, also when `name` does not require grad (an input).

    Then it is the last step of backprop done on its own: the sum over the consumers c
    on a route to the output of ∂output/∂c (from the pass) times ∂c/∂name (a vjp on c's
    local step), which is what backward() would put in name.grad had it required grad.
    A consumer without a gradient of its own (no other input requires grad) needs a pass
    with `name` requiring grad.
    """
    if state.requires_grad.get(name):
        return live.grad(name)
    consumers = [c for c in live.graph.consumers[name] if c in nodes]
    if any(live.grad(c) is None for c in consumers):
        return run_live(state, {**state.requires_grad, name: True}).grad(name)
    total = None
    for c in consumers:
        local = live.local(c)
        term = vjp(local.output, local.inputs[name], live.grad(c))
        total = term if total is None else total + term
    return total


def exact_count(count: float) -> int | None:
    """A path count worked out in float64, as a whole number while that is exact (below
    2**53), else None: a 145-digit count in float64 is not that many paths to the unit."""
    return int(round(count)) if count < 2**53 else None


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


# ---------------------------------------------------------------- the graph of nodes


def _on_routes(live: Live, source: str) -> list[str]:
    """Nodes on some path from the source to the output, in graph (topological) order."""
    graph = live.graph
    return nodes_on_routes(list(live.trace.tensors), graph.inputs, graph.consumers, source, graph.preset.output)


def nodes_on_routes(order: list[str], inputs: Mapping[str, tuple[str, ...]], consumers: Mapping[str, tuple[str, ...]],
                    source: str, out: str) -> list[str]:
    """The nodes on some route from `source` to `out`, in `order` (topological): the
    graph's structure alone, no values."""
    reaches_out = {out}
    for node in reversed(order):
        if any(c in reaches_out for c in consumers[node]):
            reaches_out.add(node)
    from_source = {source}
    for node in order:
        if node != source and any(i in from_source for i in inputs[node]):
            from_source.add(node)
    if source not in reaches_out:
        return []
    return [n for n in order if n in reaches_out and n in from_source]


def _routes(live: Live, source: str, nodes: list[str]) -> tuple[int, list[tuple[str, ...]]]:
    """How many routes of nodes there are, and the routes themselves when at most MAX_ROUTES."""
    on = set(nodes)
    out = live.graph.preset.output
    count = {out: 1} if out in on else {}
    for node in reversed(nodes):
        if node != out:
            count[node] = sum(count.get(c, 0) for c in live.graph.consumers[node] if c in on)
    total = count.get(source, 0)
    if total > MAX_ROUTES:
        return total, []
    routes: list[tuple[str, ...]] = []

    def walk(route: tuple[str, ...]) -> None:
        node = route[-1]
        if node == out:
            routes.append(route)
            return
        for c in live.graph.consumers[node]:
            if c in on:
                walk(route + (c,))

    if total:
        walk((source,))
    return total, routes


# ---------------------------------------------------------------- element level


@dataclass(frozen=True)
class _Edge:
    jac: np.ndarray  # (numel consumer, numel input), float64
    mask: np.ndarray  # which entries are edges of the element graph


def _edges(live: Live, nodes: list[str]) -> dict[tuple[str, str], _Edge] | None:
    on = set(nodes)
    edges = {}
    for c in nodes:
        if c not in live.graph.preset.leaf_names:
            local = live.local(c)
            for n in live.graph.inputs[c]:
                if n not in on:
                    continue
                jac = local.jacobian(n)
                if jac is None:
                    return None
                matrix = jac.reshape(local.output.numel(), local.inputs[n].numel())
                # Between two scalars the edge is there even where its factor is 0 (a dead
                # ReLU still has a path, carrying nothing); inside tensors a zero entry is
                # mostly structure (Z1[0,0] does not depend on W1[1,0]), so it is no edge.
                mask = np.ones_like(matrix, dtype=bool) if matrix.size == 1 else matrix != 0
                edges[(c, n)] = _Edge(matrix, mask)
    return edges


def _forward_dp(nodes, edges, source, flat, shapes):
    """Per element: the number of paths from the source and the sum of their products."""
    size = {n: int(np.prod(shapes[n], dtype=np.int64)) for n in nodes}
    counts = {source: np.eye(size[source])[flat]}
    sums = {source: np.eye(size[source])[flat]}
    for c in nodes:
        if c == source:
            continue
        counts[c] = np.zeros(size[c])
        sums[c] = np.zeros(size[c])
        for (consumer, n), edge in edges.items():
            if consumer == c and n in counts:
                counts[c] += edge.mask.astype(np.float64) @ counts[n]
                sums[c] += edge.jac @ sums[n]
    return counts, sums


def _route_totals(route: tuple[str, ...], edges, flat, shapes) -> Route:
    n = int(np.prod(shapes[route[0]], dtype=np.int64))
    count = np.eye(n)[flat]
    total = np.eye(n)[flat]
    for prev, node in zip(route, route[1:]):
        edge = edges[(node, prev)]
        count = edge.mask.astype(np.float64) @ count
        total = edge.jac @ total
    return Route(route, exact_count(count[0]), float(total[0]))


def _enumerate(nodes, edges, source, flat, shapes, out):
    """Depth-first over element paths that reach the output element."""
    reaches: dict[str, np.ndarray] = {out: np.ones(1, dtype=bool)}
    for n in reversed(nodes):
        if n == out:
            continue
        r = np.zeros(int(np.prod(shapes[n], dtype=np.int64)), dtype=bool)
        for (c, i), edge in edges.items():
            if i == n and c in reaches:
                r |= (edge.mask.T.astype(np.int64) @ reaches[c].astype(np.int64)) > 0
        reaches[n] = r
    consumers = {n: [c for (c, i) in edges if i == n] for n in nodes}
    found: list[Path] = []

    def walk(node: str, k: int, trail: list[PathStep], product: float, labels: list[str]) -> None:
        if node == out:
            factors = " × ".join(_factor(s.local) for s in trail)
            found.append(Path(tuple(trail), product, f"{' → '.join(labels)}: {factors} = {fmt(product)}"))
            return
        for c in consumers[node]:
            edge = edges[(c, node)]
            for j in np.flatnonzero(edge.mask[:, k]):
                if reaches[c][j]:
                    local = float(edge.jac[j, k])
                    label = element_label(c, shapes[c], int(j))
                    walk(c, int(j), trail + [PathStep(label, local)], product * local, labels + [label])

    walk(source, flat, [], 1.0, [element_label(source, shapes[source], flat)])
    return found


def _factor(value: float) -> str:
    return f"({fmt(value)})" if value < 0 else fmt(value)
