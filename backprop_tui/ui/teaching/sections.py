"""The inspector's teaching sections: contributions, paths, per-sample shares, flags.

`inspector_sections` runs the engine's analyses (engine.analysis) on a FrozenState and
returns Rich Text lines under headings. It never computes a number itself: sums,
products and shares are the engine's; here they are only put into words. State-wide
results (flags, per-sample gradients) are cached per snapshot, so moving the cursor
does not recompute them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable

import numpy as np
from rich.text import Text

from backprop_tui.ui.format import FLAG_MARK, fmt
from backprop_tui.ui.text_rows import wrapped_rows

if TYPE_CHECKING:
    from backprop_tui.engine.analysis.flags import Flag
    from backprop_tui.engine.snapshot import Snapshot

MAX_PATHS_SHOWN = 8
# More nodes than this between a leaf and the output (deep_chain's 500 steps): the paths
# are not multiplied out on every edit (hundreds of local Jacobians, ~100 ms); the
# section says how far the leaf is, and the step-through (b / B) walks it node by node.
MAX_PATH_NODES = 64
MAX_ROUTES_SHOWN = 6
MAX_SAMPLES_SHOWN = 8
MATRIX_ROWS = 8  # rows of a tensor drawn in a section (the weights grid and the full view page the rest)
LIGHT_NODES = 40  # at most this many nodes and elements: analyses take a few ms,
LIGHT_ELEMENTS = 4000  # so the inspector computes them at once (no "computing…" flash)
DEFERRED = "computing the sections below…"  # in view only for the frame before they are there
HEADING = "bold underline"
FLAG_STYLE = "bold yellow"


def is_light(snapshot: "Snapshot") -> bool:
    """True when the analyses of this preset take a few milliseconds (no worker needed)."""
    nodes = snapshot.nodes
    return len(nodes) <= LIGHT_NODES and sum(int(np.prod(n.shape, dtype=np.int64)) for n in nodes) <= LIGHT_ELEMENTS


class SnapshotCache:
    """State-wide analyses, remembered for the snapshot they were computed on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[object, object]] = {}

    def get(self, key: str, snapshot: object, compute: Callable[[], object]) -> object:
        with self._lock:
            hit = self._items.get(key)
        if hit is not None and hit[0] is snapshot:
            return hit[1]
        value = compute()
        with self._lock:
            self._items[key] = (snapshot, value)
        return value


def flags_by_node(flags: "tuple[Flag, ...]") -> dict[str, list[str]]:
    by_node: dict[str, list[str]] = {}
    for flag in flags:
        by_node.setdefault(flag.node, []).append(flag.reason)
    return by_node


def compute_flags(state, snapshot, cache: SnapshotCache) -> dict[str, list[str]]:
    from backprop_tui.engine.analysis.flags import flags

    def run() -> dict[str, list[str]]:
        try:
            return flags_by_node(flags(state, finite=snapshot.finite))  # the snapshot of this very state
        except Exception:  # noqa: BLE001 - no flags is better than a broken inspector
            return {}

    return cache.get("flags", snapshot, run)


def inspector_sections(
    state,
    snapshot: "Snapshot",
    name: str,
    index: tuple[int, ...] | None,
    cache: SnapshotCache,
    cancelled: Callable[[], bool] = lambda: False,
    visible: tuple[int, int] | None = None,
    room: int = 80,
) -> tuple[list[Text], int | None]:
    """The teaching sections for node `name` (element `index` when one is selected), and
    the line standing for the sections left uncomputed (None when all are there).

    `room`: the columns a matrix may take. `visible`: (rows, width) of the sections on
    screen (None: compute them all). A
    section that would start below those rows is not computed, nor any after it: the
    paths of simple_nn's X[0,0] are about 2 ms of an edit, and at 100×30 they sit below
    the panel's edge. One DEFERRED line stands for them, and the inspector asks again when
    it scrolls there. Rows are counted as the panel wraps the lines, or one for a line
    only Rich can wrap: never more than it shows, so a section on screen is computed.
    """
    lines: list[Text] = []
    flagged = compute_flags(state, snapshot, cache).get(name, [])
    if flagged:
        lines.append(Text(f"{FLAG_MARK} Flags", style=HEADING))
        lines.extend(Text(f"  {reason}", style=FLAG_STYLE) for reason in flagged)
    for section in (_pooling, _contributions, _paths, _per_sample):
        if cancelled():
            return lines, None
        if visible is not None and _rows(lines, visible[1]) + bool(lines) >= visible[0]:
            if lines:
                lines.append(Text(""))
            lines.append(Text(DEFERRED, style="dim italic"))
            return lines, len(lines) - 1
        part = _guarded(section, state, snapshot, name, index, cache, room)
        if part and lines:
            lines.append(Text(""))
        lines.extend(part)
    return lines, None


def _rows(lines: list[Text], width: int) -> int:
    return sum(wrapped_rows(line, width) for line in lines)


def _guarded(section, *args) -> list[Text]:
    from backprop_tui.engine import BackpropError

    try:
        return section(*args)
    except BackpropError as exc:
        return [Text(f"  {exc}", style="dim")]
    except Exception as exc:  # noqa: BLE001 - an analysis bug must not take the inspector down
        return [Text(f"  unavailable ({type(exc).__name__}: {exc})", style="dim")]


def _heading(text: str) -> Text:
    return Text(text, style=HEADING)


def _element(array: np.ndarray, index: tuple[int, ...] | None) -> str:
    """One element (the cursor's) of an array, or the whole array compactly."""
    from backprop_tui.engine.format import format_array

    if array.size == 1:
        return fmt(float(array.reshape(-1)[0]))
    if index and len(index) == array.ndim:
        return fmt(float(array[tuple(index)]))
    return format_array(array, max_items=4)


def _no_grad_here(name: str, out: str, missing: str) -> Text:
    """Why a section that needs the leaf's grad does not apply: it has none."""
    return Text(f"  {name} does not require grad: PyTorch computes no ∂{out}/∂{name}, so there is {missing} "
                f"(g in its weights grid turns requires_grad on)", style="dim")


def _term(text: str) -> str:
    """A number inside a sum: negatives in brackets, `3 + (-1)`."""
    return f"({text})" if text.startswith("-") else text


def _where(name: str, index: tuple[int, ...] | None, shape: tuple[int, ...]) -> str:
    from backprop_tui.engine.session import format_index

    return format_index(name, index) if shape and index and len(index) == len(shape) else name


# ---------------------------------------------------------------- contributions


def _pooling(state, snapshot, name, index, cache, room) -> list[Text]:
    """For a max_pool2d step or its input: where each window's gradient goes."""
    import torch

    from backprop_tui.engine.analysis.pooling import max_pooling_steps, routing_lines

    lines: list[Text] = []
    for step, x_name, kwargs in max_pooling_steps(state.preset):
        if name in (step, x_name):
            x = torch.from_numpy(np.array(snapshot.node(x_name).value))
            grad = snapshot.node(step).grad
            lines.append(_heading("Max pooling: where the gradient goes"))
            routed = routing_lines(step, x_name, x, None if grad is None else torch.from_numpy(np.array(grad)), kwargs)
            lines.extend(Text(f"  {line}") for line in routed)
    return lines


def _contributions(state, snapshot, name, index, cache, room) -> list[Text]:
    from backprop_tui.engine.analysis.contributions import node_contributions

    out = snapshot.output
    split = node_contributions(state, name)
    lines = [_heading("Contributions: what each consumer sends back")]
    if not split.contributions:
        lines.append(Text(f"  {split.reason}", style="dim"))
        return lines
    shape = snapshot.node(name).shape
    where = _where(name, index, shape)
    scalar = all(p.value.size == 1 for p in split.contributions) or bool(index and len(index) == len(shape))
    if not scalar:
        return lines + _contributions_as_matrices(split, out, where, room)
    shown = []
    for part in split.contributions:
        value = _element(part.value, index)
        shown.append(value)
        line = _from(part.consumer, name, out)
        line.append(f"  {value}")
        lines.append(line)
    total, grad = _element(split.total, index), _element(split.grad, index)
    if len(shown) > 1:
        sum_text = f"  sum  {' + '.join(_term(v) for v in shown)} = {total}"
    else:
        sum_text = f"  sum  {total}"
    lines.append(Text.assemble((sum_text, "bold"), (f"   autograd's ∂{out}/∂{where} = ", "dim"), grad))
    if split.is_accumulated:
        lines.append(Text(f"  {name} is used {len(split.contributions)} times: autograd adds the parts into its grad",
                          style="dim italic"))
    return lines


def _from(consumer: str, name: str, out: str) -> Text:
    how = f"∂{out}/∂{name} directly" if consumer == out else f"∂{out}/∂{consumer} · ∂{consumer}/∂{name}"
    line = Text("  from ")
    line.append(consumer, style="bold")
    line.append(f"  ({how})", style="dim")
    return line


def _contributions_as_matrices(split, out: str, where: str, room: int) -> list[Text]:
    """A tensor's parts as aligned matrices, one under another, then their sum beside
    autograd's grad (said equal rather than drawn twice when it is)."""
    from backprop_tui.ui.format import matrix, matrix_width

    name = split.node
    arrays = [p.value for p in split.contributions]
    several = len(arrays) > 1
    if several:
        arrays.append(split.total)
    # as many columns as fit beside the indent, "[", " … +N" and " ]" (as the value lines do)
    room = max(20, room - 4)
    width = matrix_width(arrays, [True] * len(arrays), max_rows=MATRIX_ROWS, max_cols=max(1, (room - 10) // 2))
    cols = max(1, (room - 10) // (width + 1))
    lines: list[Text] = []

    def drawn(array) -> list[Text]:
        rows = matrix(array, width, grad=True, max_rows=MATRIX_ROWS, max_cols=cols)
        return [Text("    ").append_text(row) for row in rows]

    for part in split.contributions:
        lines.append(_from(part.consumer, name, out))
        lines.extend(drawn(part.value))
    same = np.array_equal(split.total, split.grad)
    if several:
        lines.append(Text("  sum", style="bold"))
        lines.extend(drawn(split.total))
    what = "their sum" if several else "this one part"
    if same:
        lines.append(Text(f"  autograd's ∂{out}/∂{where} (the grad above) is {what}, element for element",
                          style="bold"))
    else:  # float32 adds in another order: equal to the last digits or so
        lines.append(Text(f"  autograd's ∂{out}/∂{where} (the grad above), which adds the parts in its own order",
                          style="bold"))
    if split.is_accumulated:
        lines.append(Text(f"  {name} is used {len(split.contributions)} times: autograd adds the parts into its grad",
                          style="dim italic"))
    return lines


# ---------------------------------------------------------------- paths


def _paths(state, snapshot, name, index, cache, room) -> list[Text]:
    from backprop_tui.engine.analysis.paths import paths

    node = snapshot.node(name)
    if name not in {leaf.name for leaf in snapshot.leaves} or node.dtype == "int":
        return []
    out = snapshot.output
    lines = [_heading(f"Paths to {out}: the chain rule as a sum over paths")]
    if not state.requires_grad.get(name):
        lines.append(_no_grad_here(name, out, "no gradient to split into paths"))
        return lines
    if node.shape and int(np.prod(node.shape)) > 1 and not (index and len(index) == len(node.shape)):
        lines.append(Text("  pick an element in the weights grid (tab) to follow its paths", style="dim"))
        return lines
    on_routes = _nodes_on_routes(snapshot, name)
    if len(on_routes) > MAX_PATH_NODES:
        lines.append(Text(
            f"  {name} reaches {out} through {len(on_routes) - 1} steps: too many to multiply out "
            f"their local derivatives on every edit; b / B step through the backward pass node by node",
            style="dim"))
        return lines
    result = paths(state, name, index or None)
    for path in result.paths[:MAX_PATHS_SHOWN]:
        lines.append(Text(f"  {path.text}"))
    if len(result.paths) > MAX_PATHS_SHOWN:
        lines.append(Text(f"  … and {len(result.paths) - MAX_PATHS_SHOWN} more paths", style="dim"))
    if not result.paths and result.routes:
        for route in result.routes[:MAX_ROUTES_SHOWN]:
            count = "?" if route.n_paths is None else str(route.n_paths)
            total = "" if route.total is None else f", products add to {fmt(route.total)}"
            lines.append(Text(f"  {' → '.join(route.nodes)}: {count} paths{total}"))
        if len(result.routes) > MAX_ROUTES_SHOWN:
            lines.append(Text(f"  … and {len(result.routes) - MAX_ROUTES_SHOWN} more routes", style="dim"))
    lines.append(Text(f"  {result.summary}", style="bold"))
    return lines


def _nodes_on_routes(snapshot: "Snapshot", source: str) -> list[str]:
    """The nodes on some route from `source` to the output (the graph's structure only)."""
    from backprop_tui.engine.analysis.paths import nodes_on_routes

    nodes = snapshot.nodes  # leaves, then the steps in order
    return nodes_on_routes([n.name for n in nodes], {n.name: n.inputs for n in nodes},
                           {n.name: n.consumers for n in nodes}, source, snapshot.output)


# ---------------------------------------------------------------- per sample


def _per_sample(state, snapshot, name, index, cache, room) -> list[Text]:
    from backprop_tui.engine.analysis.live import AnalysisError
    from backprop_tui.engine.analysis.per_sample import batch_leaves, per_sample

    if name not in state.values:
        return []
    try:
        batched, _ = batch_leaves(state)
    except AnalysisError:
        return []  # not a batch preset: nothing to break down
    if name in batched:
        return []
    if not state.requires_grad.get(name):
        return [_heading("Per sample: each sample's share of the batch gradient"),
                _no_grad_here(name, snapshot.output, "no batch gradient to share out")]

    def run():
        try:
            return per_sample(state)
        except AnalysisError as exc:
            return exc

    result = cache.get("per_sample", snapshot, run)
    lines = [_heading("Per sample: each sample's share of the batch gradient")]
    if isinstance(result, Exception):
        lines.append(Text(f"  {result}", style="dim"))
        return lines
    shares = result.leaves.get(name)
    if shares is None:
        lines.append(Text(f"  {name} gets no gradient from the samples", style="dim"))
        return lines
    shape = tuple(shares.batch_grad.shape)
    element = tuple(index) if index and len(index) == len(shape) else (0,) * len(shape)
    where = _where(name, element, shape)
    lines.append(Text(f"  {result.explanation}", style="dim"))
    if shape and int(np.prod(shape)) > 1 and not (index and len(index) == len(shape)):
        lines.append(Text(f"  showing {where} (pick another element in the weights grid)", style="dim"))
    weight = None if result.weight is None else fmt(result.weight)
    n = result.batch_size
    caption = f"  sample i: its own ∂loss_i/∂{where}"
    if shares.shares is not None and weight is not None:
        caption += f" × {weight} = its share"
    lines.append(Text(caption, style="dim"))
    for i in range(min(n, MAX_SAMPLES_SHOWN)):
        own = fmt(float(shares.sample_grads[i][element]))
        line = Text(f"  sample {i}: {own}")
        if shares.shares is not None and weight is not None:
            line.append(f"  × {weight} = ")
            line.append(fmt(float(shares.shares[i][element])), style="bold")
        lines.append(line)
    if n > MAX_SAMPLES_SHOWN:
        lines.append(Text(f"  … and {n - MAX_SAMPLES_SHOWN} more samples", style="dim"))
    batch = fmt(float(shares.batch_grad[element]))
    if result.combine in ("mean", "sum"):
        lines.append(
            Text(f"  the {n} shares add up to the batch gradient ∂{snapshot.output}/∂{where} = {batch}", style="bold")
        )
    else:
        lines.append(Text(f"  batch gradient ∂{snapshot.output}/∂{where} = {batch}", style="bold"))
    return lines
