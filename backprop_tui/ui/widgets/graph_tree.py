"""The computational graph as a tree rooted at the output, and PyTorch's raw grad_fn chain.

Children are a node's inputs: the direction backprop walks. A node used by several
consumers is shown in full once (its first place in the walk) and as a reference
elsewhere. Labels are `rich.text.Text`, so names such as `W1[0,1]` stay literal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from backprop_tui.ui.format import grad_of, shape_text, value_of
from backprop_tui.ui.messages import Inspect, OpenInEditor

if TYPE_CHECKING:
    from backprop_tui.engine.snapshot import AutogradFn, Node, Snapshot

SHORT_KIND = {"parameter": "param"}
MAX_EXPR_CHARS = 36  # longer expressions are cut in labels; the inspector shows them whole


@dataclass(frozen=True)
class GraphRef:
    name: str
    ref: bool  # True: a reference to a node shown in full elsewhere


@dataclass(frozen=True)
class LabelParts:
    """A node's label in pieces, so a narrow panel drops whole pieces, never half a number.

    `values` and `grads` go from the fullest form to the most compact (for a tensor:
    three elements, one element, the shape alone); a scalar has one form.
    """

    name: Text
    detail: Text  # " = w * x" for a step, " param" for a leaf
    values: tuple[Text, ...]
    grads: tuple[Text, ...]

    def candidates(self) -> list[Text]:
        """From the fullest label to the most compact; the first that fits is shown."""
        v, g = self.values, self.grads
        variants = [(True, v[0], g[0]), (False, v[0], g[0])]
        for i in range(1, max(len(v), len(g))):
            variants.append((False, v[min(i, len(v) - 1)], g[min(i - 1, len(g) - 1)]))
            variants.append((False, v[min(i, len(v) - 1)], g[min(i, len(g) - 1)]))
        variants += [(False, None, g[-1]), (False, None, None)]  # deep in a narrow tree: grad first
        labels = []
        for detail, value, grad in variants:
            text = self.name.copy()
            if detail:
                text.append_text(self.detail)
            if value is not None:
                text.append("  ")
                text.append_text(value)
            if grad is not None:
                text.append("  grad ", style="dim")
                text.append_text(grad)
            if not labels or text.plain != labels[-1].plain:
                labels.append(text)
        return labels


FLAG_MARK = "⚠"  # the engine flagged this node (analysis.flags); the inspector says why


def node_parts(node: "Node", previous: "Node | None", flagged: bool = False) -> LabelParts:
    name = Text(node.name, style="bold")
    if flagged:
        name.append(f" {FLAG_MARK}", style="bold yellow")
    if node.expr:
        expr = node.expr if len(node.expr) <= MAX_EXPR_CHARS else node.expr[: MAX_EXPR_CHARS - 1] + "…"
        detail = Text(f" = {expr}", style="cyan")
    else:
        detail = Text(f" {SHORT_KIND.get(node.kind, node.kind)}", style="dim")
    if not node.shape:
        return LabelParts(name, detail, (value_of(node, previous),), (grad_of(node, previous),))
    shape = Text(f"[{shape_text(node.shape)}]", style="dim")
    values = (value_of(node, previous), value_of(node, previous, elements=1), shape)
    if node.grad is None:
        grads = (grad_of(node, previous),)
    else:
        grads = (grad_of(node, previous), grad_of(node, previous, elements=1), Text("…", style="dim"))
    return LabelParts(name, detail, values, grads)


def node_label(node: "Node", previous: "Node | None") -> Text:
    """The full label (no width limit)."""
    return node_parts(node, previous).candidates()[0]


def fit_label(parts: LabelParts, width: int) -> Text:
    candidates = parts.candidates()
    for text in candidates:
        if text.cell_len <= width:
            return text
    text = candidates[-1]
    text.truncate(max(1, width), overflow="ellipsis")
    return text


class _ArrayKey:
    """An array compared by its exact bytes (nan and -0.0 included), by identity first."""

    __slots__ = ("array",)

    def __init__(self, array: "np.ndarray | None") -> None:
        self.array = array

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _ArrayKey):
            return NotImplemented
        a, b = self.array, other.array
        if a is b:
            return True
        if a is None or b is None or a.shape != b.shape or a.dtype != b.dtype:
            return False
        return a.tobytes() == b.tobytes()

    __hash__ = None  # type: ignore[assignment]


def ref_label(node: "Node") -> Text:
    text = Text("↪ ", style="dim")
    text.append(node.name, style="bold")
    text.append("  shared: shown in full above", style="dim italic")
    return text


class GraphTree(Tree[GraphRef]):
    """Output at the top, inputs below; labels updated in place on every edit."""

    BINDINGS = [
        Binding("enter", "select_cursor", "Open/fold", id="graph.select",
                tooltip="Fold or unfold a node; on a leaf, edit it in the weight editor; on a reference, jump to the full entry."),
    ]

    def __init__(self, **kwargs) -> None:
        self._occurrences: dict[str, list[TreeNode[GraphRef]]] = {}
        self._full: dict[str, TreeNode[GraphRef]] = {}
        self._parts: dict[int, LabelParts] = {}  # by TreeNode id: the label in pieces
        self._shown: dict[str, tuple] = {}  # by name: what its label was made from (_label_key)
        self._flagged: frozenset[str] = frozenset()  # nodes marked with FLAG_MARK
        self._snapshot: "Snapshot | None" = None
        self._previous: "Snapshot | None" = None
        super().__init__("graph", **kwargs)
        self.show_root = False
        self.guide_depth = 2

    def render_label(self, node: TreeNode[GraphRef], base_style, style) -> Text:
        """Fit the label to the panel: drop the expression, then previews, before cutting."""
        parts = self._parts.get(node.id)
        depth = 0
        parent = node.parent
        while parent is not None and parent is not self.root:
            depth += 1
            parent = parent.parent
        icon = 2 if node.allow_expand else 0
        room = self.scrollable_content_region.width - depth * self.guide_depth - icon
        # the base class styles node._label and adds the fold icon: lend it the fitted
        # label for this call only, so node.label stays the full text
        full = node._label
        if parts is not None:
            node._label = fit_label(parts, room)
        else:  # a reference or a group line: words only, so a plain cut is honest
            node._label = full.copy()
            node._label.truncate(max(1, room), overflow="ellipsis")
        try:
            return super().render_label(node, base_style, style)
        finally:
            node._label = full

    def build(self, snapshot: "Snapshot") -> None:
        """Lay out the tree for a newly loaded preset (not called for edits)."""
        self.clear()
        self._occurrences = {}
        self._full = {}
        self._parts = {}
        self._shown = {}
        self._flagged = frozenset()  # a new preset: its flags arrive after the first analysis
        self._add_walk(self.root, snapshot.output, snapshot)
        unreachable = [n.name for n in reversed(snapshot.nodes) if n.name not in self._full]
        if unreachable:
            group = self.root.add(
                Text(f"not on the path to {snapshot.output} (no gradient flows here)", style="dim italic"),
                data=None,
                expand=True,
            )
            for name in unreachable:
                if name not in self._full:
                    self._add_walk(group, name, snapshot)
        self.cursor_line = 0

    def _add_walk(self, parent: TreeNode[GraphRef], start: str, snapshot: "Snapshot") -> None:
        # An explicit stack, not recursion: a preset may chain up to 2000 steps.
        stack = [(parent, start)]
        while stack:
            under, name = stack.pop()
            node = snapshot.node(name)
            if name in self._full:
                tree_node = under.add_leaf(ref_label(node), data=GraphRef(name, True))
            elif node.inputs:
                tree_node = under.add(node_label(node, None), data=GraphRef(name, False), expand=True)
                self._full[name] = tree_node
                self._parts[tree_node.id] = node_parts(node, None, name in self._flagged)
                stack.extend((tree_node, i) for i in reversed(node.inputs))
            else:
                tree_node = under.add_leaf(node_label(node, None), data=GraphRef(name, False))
                self._full[name] = tree_node
                self._parts[tree_node.id] = node_parts(node, None, name in self._flagged)
            self._occurrences.setdefault(name, []).append(tree_node)

    def update_values(self, snapshot: "Snapshot", previous: "Snapshot | None") -> None:
        """Relabel in place the full entries whose label changes: values, grads, deltas.

        A label is made from the node, the node before the last edit and the flag mark;
        entries whose inputs are the same as when their label was made keep it (the
        engine reuses unchanged arrays, so most compare by identity).
        """
        self._snapshot, self._previous = snapshot, previous
        for name in self._full:
            if self._label_key(name) != self._shown.get(name):
                self._relabel(name)

    def _label_key(self, name: str) -> tuple:
        snapshot, previous = self._snapshot, self._previous
        node = snapshot.node(name)
        before = previous.node(name) if previous is not None and name in previous else None
        value, grad = _ArrayKey(node.value), _ArrayKey(node.grad)
        if before is None:
            deltas = (None, None)
        else:  # an unchanged array shows no delta, as if there were no previous snapshot
            old_value, old_grad = _ArrayKey(before.value), _ArrayKey(before.grad)
            deltas = (None if old_value == value else old_value, None if old_grad == grad else old_grad)
        return node.expr, node.kind, node.shape, value, grad, deltas, name in self._flagged

    def _relabel(self, name: str) -> None:
        snapshot, previous = self._snapshot, self._previous
        tree_node = self._full[name]
        node = snapshot.node(name)
        before = previous.node(name) if previous is not None and name in previous else None
        parts = node_parts(node, before, name in self._flagged)
        self._parts[tree_node.id] = parts
        self._shown[name] = self._label_key(name)
        tree_node.set_label(parts.candidates()[0])

    def set_flags(self, names: "set[str] | frozenset[str]") -> None:
        """Mark the flagged nodes (the old marks stay until the new flags arrive: no flicker)."""
        names = frozenset(names)
        changed = names ^ self._flagged
        self._flagged = names
        if self._snapshot is None:
            return
        for name in changed:
            if name in self._full and name in self._snapshot:
                self._relabel(name)

    @property
    def highlighted_name(self) -> str | None:
        node = self.cursor_node
        return None if node is None or node.data is None else node.data.name

    def show_node(self, name: str) -> None:
        """Move the cursor to the full entry of `name`, unfolding its ancestors."""
        target = self._full.get(name)
        if target is None:
            return
        parent = target.parent
        while parent is not None:
            parent.expand()
            parent = parent.parent
        self.move_cursor(target)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[GraphRef]) -> None:
        event.stop()
        if event.node.data is not None:
            self.post_message(Inspect(event.node.data.name))

    def on_focus(self) -> None:
        # back from another panel: the inspector shows this panel's node again
        if self.highlighted_name is not None:
            self.post_message(Inspect(self.highlighted_name))

    def on_tree_node_selected(self, event: Tree.NodeSelected[GraphRef]) -> None:
        event.stop()
        data = event.node.data
        if data is None:
            return
        if data.ref:
            self.call_later(self.show_node, data.name)
        elif not event.node.allow_expand:
            self.post_message(OpenInEditor(data.name))


def autograd_label(fn: "AutogradFn", repeated: bool) -> Text:
    text = Text()
    if repeated:
        text.append("↪ ", style="dim")
    text.append(fn.name, style="bold magenta" if fn.name != "AccumulateGrad" else "bold green")
    if fn.node is not None:
        if fn.name == "AccumulateGrad":
            text.append(f"  → {fn.node}.grad", style="green")
        else:
            text.append(f"  produced {fn.node}", style="cyan")
    if repeated:
        text.append("  (shown above)", style="dim italic")
    return text


class AutogradTree(Tree["str | None"]):
    """`output.grad_fn` and its `next_functions`, as PyTorch holds them."""

    def __init__(self, **kwargs) -> None:
        super().__init__("grad_fn", **kwargs)
        self.guide_depth = 2
        self._shown: dict | None = None

    def show_chain(self, snapshot: "Snapshot") -> None:
        """Rebuild only when the chain changed (toggling requires_grad can change it)."""
        if self._shown is not None and self._shown == snapshot.autograd and self.root.data == snapshot.output:
            return
        self._shown = dict(snapshot.autograd)
        self.clear()
        self.root.data = snapshot.output
        output = snapshot.output
        root_fn = snapshot.autograd.get(output)
        if root_fn is None:
            self.root.set_label(Text(f"{output} has no grad_fn: no leaf requires grad, so autograd recorded nothing"))
            return
        self.root.set_label(Text.assemble((f"{output}.grad_fn", "bold"), ("  backward() walks from here", "dim")))
        expanded: set[str] = {output}
        stack = [(self.root, root_fn)]
        while stack:
            under, fn = stack.pop()
            children = fn.children
            repeated = False
            if fn.ref and fn.node is not None:
                if fn.node in expanded:
                    repeated = True
                    children = ()
                else:
                    expanded.add(fn.node)
                    chain = snapshot.autograd.get(fn.node)
                    children = chain.children if chain is not None else ()
            label = autograd_label(fn, repeated)
            if children:
                tree_node = under.add(label, data=fn.node, expand=True)
                stack.extend((tree_node, child) for child in reversed(children))
            else:
                under.add_leaf(label, data=fn.node)
        self.root.expand()
        self.cursor_line = 0

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        event.stop()
        if event.node.data is not None:
            self.post_message(Inspect(event.node.data))


class GraphPanel(Vertical):
    """`#graph`: the node tree, or (key `a`) the raw autograd chain."""

    BINDINGS = [
        Binding("a", "toggle_autograd", "grad_fn view", id="graph.autograd",
                tooltip="Switch between the graph of named nodes and PyTorch's raw grad_fn chain."),
    ]

    def compose(self):
        yield GraphTree(id="graph-tree")
        yield AutogradTree(id="autograd-tree")

    def on_mount(self) -> None:
        self.border_title = "Graph: output ← inputs"
        self.query_one(AutogradTree).display = False

    @property
    def raw_view(self) -> bool:
        return self.query_one(AutogradTree).display

    def load(self, snapshot: "Snapshot") -> None:
        self.query_one(GraphTree).build(snapshot)
        self.update_snapshot(snapshot, None)

    def update_snapshot(self, snapshot: "Snapshot", previous: "Snapshot | None") -> None:
        self.query_one(GraphTree).update_values(snapshot, previous)
        self._snapshot = snapshot
        if self.raw_view:
            self.query_one(AutogradTree).show_chain(snapshot)

    def action_toggle_autograd(self) -> None:
        graph, raw = self.query_one(GraphTree), self.query_one(AutogradTree)
        show_raw = not raw.display
        if show_raw:
            raw.show_chain(self._snapshot)
        raw.display, graph.display = show_raw, not show_raw
        self.border_title = "Autograd: grad_fn chain (raw)" if show_raw else "Graph: output ← inputs"
        (raw if show_raw else graph).focus()
