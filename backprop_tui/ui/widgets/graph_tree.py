"""The computational graph as a tree rooted at the output, and PyTorch's raw grad_fn chain.

Children are a node's inputs: the direction backprop walks. A node used by several
consumers is shown in full once (its first place in the walk) and as a reference
elsewhere. A long chain of steps, each feeding only the next, is shown at one level under
its first step, with its middle folded into a "… N more steps" row that enter opens.
Labels are `rich.text.Text`, so names such as `W1[0,1]` stay literal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import numpy as np
from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.geometry import Region
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from backprop_tui.ui.format import (
    PREVIEW_DIGITS, PREVIEW_ELEMENTS, changed, fmt, grad_of, scalar_delta, shape_text, signed, value_of,
)
from backprop_tui.ui.messages import Inspect, OpenInEditor
from backprop_tui.ui.widgets.tree_lines import DrawnLabel, QuickTree

if TYPE_CHECKING:
    from backprop_tui.engine.snapshot import AutogradFn, Node, Snapshot

SHORT_KIND = {"parameter": "param"}
MAX_EXPR_CHARS = 36  # longer expressions are cut in labels; the inspector shows them whole


@dataclass(frozen=True)
class GraphRef:
    name: str
    ref: bool  # True: a reference to a node shown in full elsewhere


class Forms:
    """A node's value (or grad) as a label shows it, from the fullest form to the most
    compact: for a tensor, three elements, one element, then the shape (the grad: "…");
    a scalar, or no grad, has one form.

    A form is measured by its plain text, written here from the numbers formatted once,
    and made into Text (format.value_of / grad_of, whose plain text it is) only when a
    label shows it: an edit fits every label again, and a narrow panel shows the shape of
    most tensors.
    """

    __slots__ = ("node", "previous", "grad", "plains", "_texts")

    def __init__(self, node: "Node", previous: "Node | None", grad: bool) -> None:
        self.node, self.previous, self.grad = node, previous, grad
        self._texts: dict[int, Text] = {}
        array = node.grad if grad else node.value
        old = None if previous is None else (previous.grad if grad else previous.value)
        if array is None:
            self.plains: tuple[str, ...] = ("no grad",)
            return
        number = signed if grad else fmt
        if not node.shape:  # as value_of and grad_of: a number, with its delta
            delta = scalar_delta(array, old)
            plain = number(float(array.reshape(-1)[0]))
            self.plains = (plain if delta is None else f"{plain} Δ{signed(delta)}",)
            return
        flat = array.reshape(-1)
        cells = [" " + number(x, PREVIEW_DIGITS) for x in flat[:PREVIEW_ELEMENTS]]
        mask = changed(array, old)
        marked = f" Δ{int(mask.sum())} changed" if mask is not None and mask.any() else ""
        head = f"[{shape_text(array.shape)}]"

        def preview(elements: int) -> str:
            return head + "".join(cells[:elements]) + (" …" if flat.size > elements else "") + marked

        compact = "…" if grad else f"[{shape_text(node.shape)}]"
        self.plains = (preview(PREVIEW_ELEMENTS), preview(1), compact)

    def text(self, form: int) -> Text:
        text = self._texts.get(form)
        if text is None:
            if form == 2:
                text = Text(self.plains[2], style="dim")
            else:
                make = grad_of if self.grad else value_of
                elements = PREVIEW_ELEMENTS if form == 0 else 1
                text = make(self.node, self.previous, elements=elements)
            self._texts[form] = text
        return text


class LabelParts:
    """A node's label in pieces, so a narrow panel drops whole pieces, never half a number."""

    __slots__ = ("name", "detail", "values", "grads")

    def __init__(self, name: Text, detail: Text, values: Forms, grads: Forms) -> None:
        self.name = name
        self.detail = detail  # " = w * x" for a step, " param" for a leaf
        self.values = values
        self.grads = grads

    def forms(self) -> Iterator[tuple[bool, int | None, int | None]]:
        """(with the detail?, value form, grad form) of each label, fullest first."""
        v, g = len(self.values.plains), len(self.grads.plains)
        yield True, 0, 0
        yield False, 0, 0
        for i in range(1, max(v, g)):
            yield False, min(i, v - 1), min(i - 1, g - 1)
            yield False, min(i, v - 1), min(i, g - 1)
        yield False, None, g - 1  # deep in a narrow tree: grad first
        yield False, None, None

    def label(self, detail: bool, value: int | None, grad: int | None) -> Text:
        text = self.name.copy()
        if detail:
            text.append_text(self.detail)
        if value is not None:
            text.append("  ")
            text.append_text(self.values.text(value))
        if grad is not None:
            text.append("  grad ", style="dim")
            text.append_text(self.grads.text(grad))
        return text

    def full(self) -> Text:
        """The fullest label."""
        return self.label(True, 0, 0)

    def fit(self, width: int) -> Text:
        """The first candidate at most `width` cells wide, else the most compact one cut;
        each measured before it is made."""
        name, detail = self.name.plain, self.detail.plain
        values, grads = self.values.plains, self.grads.plains
        for with_detail, value, grad in self.forms():
            plain = name + detail if with_detail else name
            if value is not None:
                plain += "  " + values[value]
            if grad is not None:
                plain += "  grad " + grads[grad]
            if cell_len(plain) <= width:
                return self.label(with_detail, value, grad)
        text = self.label(False, None, None)
        text.truncate(max(1, width), overflow="ellipsis")
        return text


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
    return LabelParts(name, detail, Forms(node, previous, grad=False), Forms(node, previous, grad=True))


def node_label(node: "Node", previous: "Node | None") -> Text:
    """The full label (no width limit)."""
    return node_parts(node, previous).full()


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


CHAIN_MIN = 10  # a chain of at least this many steps is laid out at one level, its middle folded
CHAIN_HEAD = 3  # links shown above the "… more steps" row
CHAIN_TAIL = 3  # and below it
CHAIN_PAGE = 50  # enter on that row opens this many more


def _chainable(node: "Node") -> bool:
    """A computed node used by exactly one other node: a link a chain can pass through."""
    return bool(node.inputs) and len(node.consumers) == 1


def chain_below(name: str, snapshot: "Snapshot") -> list[str]:
    """The steps that feed one into the next below `name`, `name` first.

    Each step after the first is the only computed input of the step above it and is used
    by nothing else, so the chain reads top to bottom with nothing branching off it but
    leaves and other inputs (the side inputs, shown under each link).
    """
    node = snapshot.node(name)
    if not _chainable(node):
        return []
    chain = [name]
    while True:
        computed = [i for i in node.inputs if snapshot.node(i).inputs]
        if len(computed) != 1 or not _chainable(snapshot.node(computed[0])):
            return chain
        chain.append(computed[0])
        node = snapshot.node(computed[0])


class _Entry:
    """One row of the graph as laid out, whether the Tree holds it yet or not.

    A chain's links are laid out but materialised only when shown: the tree of a
    500-step chain holds the rows on screen, not 1,500.
    """

    __slots__ = ("name", "ref", "parent", "children", "chain", "member_of", "index", "tree_node")

    def __init__(self, name: str, ref: bool, parent: "_Entry | None") -> None:
        self.name = name
        self.ref = ref  # a reference to the full entry elsewhere
        self.parent = parent  # the entry this row sits under (None: a top-level row)
        self.children: list[_Entry] = []  # always shown with this row: its inputs, or a link's side inputs
        self.chain: _Chain | None = None  # for a chain's first step: the links below it, at one level
        self.member_of: _Chain | None = None  # for a link: its chain (a link may be folded away)
        self.index = 0  # the link's place in its chain
        self.tree_node: TreeNode | None = None


class _Chain:
    __slots__ = ("members", "gaps")

    def __init__(self, members: list[_Entry]) -> None:
        self.members = members
        self.gaps: list[ChainGap] = []  # folded runs of members, in order

    def rows(self) -> list["_Entry | ChainGap"]:
        """The members shown and the "… more steps" rows between them, in order."""
        rows: list[_Entry | ChainGap] = []
        i = 0
        for gap in self.gaps:
            rows.extend(self.members[i:gap.lo])
            rows.append(gap)
            i = gap.hi
        rows.extend(self.members[i:])
        return rows


@dataclass(eq=False)
class ChainGap:
    """The data of a "… N more steps" row: members lo..hi-1 of a chain, not shown yet."""

    chain: _Chain
    lo: int
    hi: int
    tree_node: "TreeNode | None" = None

    @property
    def hidden(self) -> int:
        return self.hi - self.lo

    def label(self) -> Text:
        hint = f"enter: open {CHAIN_PAGE}" if self.hidden > CHAIN_PAGE else "enter: open"
        text = Text(f"… {self.hidden} more step{'s' if self.hidden != 1 else ''} ({hint})", style="italic")
        members = self.chain.members
        first, last = members[self.lo].name, members[self.hi - 1].name
        text.append(f"  {first} … {last}" if self.hidden > 1 else f"  {first}", style="dim")
        return text


class _Row(TreeNode["GraphRef | ChainGap"]):
    """A row whose full label (`label`) is made from its LabelParts when first read: an
    edit relabels every row and draws each one's label fitted to the panel, not the full
    one, which only a reader of `label` needs."""

    _pending: "LabelParts | None" = None

    @property
    def _label(self) -> Text:
        if self._pending is not None:
            self._text = self._tree.process_label(self._pending.full())
            self._pending = None
        return self._text

    @_label.setter
    def _label(self, label: Text) -> None:
        self._text = label
        self._pending = None

    def defer_label(self, parts: LabelParts) -> None:
        self._pending = parts


class GraphTree(QuickTree["GraphRef | ChainGap"]):
    """Output at the top, inputs below; labels updated in place on every edit.

    A long chain (each step the only computed input of the one above, used by nothing
    else) is shown at one level below its first step rather than nested ever deeper: its
    first and last few links, and a "… N more steps" row between them that enter opens
    in pages of CHAIN_PAGE. `show_node` opens whatever hides the node it is asked for.
    """

    BINDINGS = [
        Binding("enter", "select_cursor", "Open/fold", id="graph.select",
                tooltip="Fold or unfold a node; on a leaf, edit it in the weight editor; on a reference, jump to the full entry; on '… N more steps', open the next steps of a long chain."),
    ]

    def __init__(self, **kwargs) -> None:
        self._entries: dict[str, _Entry] = {}  # by name: the full entry, shown or folded away
        self._occurrences: dict[str, list[TreeNode[GraphRef]]] = {}  # rows in the Tree, full and references
        self._full: dict[str, TreeNode[GraphRef]] = {}  # the full entries in the Tree (the ones relabelled)
        self._parts: dict[int, LabelParts] = {}  # by TreeNode id: the label in pieces
        self._fitted: dict[int, tuple[LabelParts | Text, int, DrawnLabel]] = {}  # by TreeNode id: the last fit
        self._shown: dict[str, tuple] = {}  # by name: what its label was made from (_label_key)
        self._flagged: frozenset[str] = frozenset()  # nodes marked with FLAG_MARK
        self._stale_rows: list[_Row] = []  # relabelled, not redrawn yet
        self._snapshot: "Snapshot | None" = None
        self._previous: "Snapshot | None" = None
        super().__init__("graph", **kwargs)
        self.show_root = False
        self.guide_depth = 2

    def _add_node(self, parent, label, data, expand=False):
        # Textual's private Tree._add_node (textual pinned in constraints.txt), making a _Row
        node = _Row(self, parent, self._new_id(), label, data, expanded=expand)
        self._tree_nodes[node._id] = node
        self._updates += 1
        return node

    def drawn_label(self, node: TreeNode, content_width: int | None = None) -> DrawnLabel:
        """The label fitted to the panel: drop the expression, then previews, before cutting.

        Kept until the label or the room for it changes."""
        if content_width is None:
            content_width = self._frame.content_width if self._frame is not None else self.scrollable_content_region.width
        room = self._room(node, content_width)
        parts = self._parts.get(node.id)
        source = node._label if parts is None else parts
        fitted = self._fitted.get(node.id)
        if fitted is None or fitted[0] is not source or fitted[1] != room:
            if parts is not None:
                text = parts.fit(room)
            else:  # a reference or a group line: words only, so a plain cut is honest
                text = source.copy()
                text.truncate(max(1, room), overflow="ellipsis")
            fitted = self._fitted[node.id] = (source, room, DrawnLabel(text))
        return fitted[2]

    def _room(self, node: TreeNode, content_width: int) -> int:
        depth = 0
        parent = node.parent
        while parent is not None and parent is not self.root:
            depth += 1
            parent = parent.parent
        icon = 2 if node.allow_expand else 0
        return content_width - depth * self.guide_depth - icon

    def render_label(self, node: TreeNode[GraphRef], base_style, style) -> Text:
        # (rows are drawn by QuickTree.draw_row; this is Tree's own path, kept equal to it)
        # the base class styles node._label and adds the fold icon: lend it the fitted
        # label for this call only, so node.label stays the full text
        full = node._label
        node._label = self.drawn_label(node).text  # the base class styles a copy
        try:
            return super().render_label(node, base_style, style)
        finally:
            node._label = full

    def build(self, snapshot: "Snapshot") -> None:
        """Lay out the tree for a newly loaded preset (not called for edits)."""
        self.clear()
        self._entries = {}
        self._occurrences = {}
        self._full = {}
        self._parts = {}
        self._fitted = {}
        self._shown = {}
        self._flagged = frozenset()  # a new preset: its flags arrive after the first analysis
        self._snapshot, self._previous = snapshot, None
        top: list[_Entry] = []
        self._lay_out(snapshot.output, None, top, snapshot)
        for entry in top:
            self._materialise(entry, self.root)
        unreachable = [n.name for n in reversed(snapshot.nodes) if n.name not in self._entries]
        if unreachable:
            group = self.root.add(
                Text(f"not on the path to {snapshot.output} (no gradient flows here)", style="dim italic"),
                data=None,
                expand=True,
            )
            for name in unreachable:
                if name not in self._entries:
                    rows: list[_Entry] = []
                    self._lay_out(name, None, rows, snapshot)
                    for entry in rows:
                        self._materialise(entry, group)
        self.cursor_line = 0

    def _lay_out(self, start: str, parent: "_Entry | None", rows: list[_Entry], snapshot: "Snapshot") -> None:
        """Lay out the walk from `start` (children are inputs); nothing enters the Tree here.

        The first place a node is reached in the walk, in the order rows are shown, holds
        its full entry; later places hold references.
        """
        # An explicit stack, not recursion: a preset may chain up to 2000 steps.
        stack: list[tuple[str, _Entry | None, list[_Entry]]] = [(start, parent, rows)]
        while stack:
            name, under, siblings = stack.pop()
            if name in self._entries:
                siblings.append(_Entry(name, True, under))
                continue
            entry = _Entry(name, False, under)
            siblings.append(entry)
            self._entries[name] = entry
            node = snapshot.node(name)
            chain = chain_below(name, snapshot)
            if len(chain) < CHAIN_MIN:
                stack.extend((i, entry, entry.children) for i in reversed(node.inputs))
                continue
            # the chain at one level under its first step: each link shows its side inputs;
            # the last link, where the chain ends, shows all its inputs
            entry.chain = _Chain([_Entry(link, False, entry) for link in chain[1:]])
            for index, member in enumerate(entry.chain.members):
                member.member_of, member.index = entry.chain, index
                self._entries[member.name] = member
            members = entry.chain.members
            if len(members) > CHAIN_HEAD + CHAIN_TAIL + 1:
                entry.chain.gaps.append(ChainGap(entry.chain, CHAIN_HEAD, len(members) - CHAIN_TAIL))
            steps = [entry] + members
            tasks = []
            for k, step in enumerate(steps):
                below = chain[k + 1] if k + 1 < len(chain) else None
                tasks.extend((i, step, step.children) for i in snapshot.node(step.name).inputs if i != below)
            stack.extend(reversed(tasks))

    def _materialise(self, first: "_Entry | ChainGap", under: TreeNode, at: int | None = None) -> TreeNode:
        """Put a laid-out row and everything shown below it into the Tree (at index `at` of
        `under`'s children, or last); folded chain members stay out."""
        stack: list[tuple[_Entry | ChainGap, TreeNode, int | None]] = [(first, under, at)]
        top = None
        while stack:
            row, parent, index = stack.pop()
            if isinstance(row, ChainGap):
                tree_node = parent.add_leaf(row.label(), data=row, before=index)
            else:
                tree_node = self._add_row(row, parent, index)
                below = row.children + (row.chain.rows() if row.chain is not None else [])
                stack.extend((child, tree_node, None) for child in reversed(below))
            row.tree_node = tree_node
            if top is None:
                top = tree_node
        return top

    def _add_row(self, entry: _Entry, parent: TreeNode, index: int | None) -> TreeNode:
        snapshot = self._snapshot
        node = snapshot.node(entry.name)
        name = entry.name
        if entry.ref:
            tree_node = parent.add_leaf(ref_label(node), data=GraphRef(name, True), before=index)
        else:
            before = self._before(name)
            parts = node_parts(node, before, name in self._flagged)
            data = GraphRef(name, False)
            if entry.children or entry.chain is not None:
                tree_node = parent.add(Text(), data=data, before=index, expand=True)
            else:
                tree_node = parent.add_leaf(Text(), data=data, before=index)
            tree_node.defer_label(parts)
            self._full[name] = tree_node
            self._parts[tree_node.id] = parts
            self._shown[name] = self._label_key(name)
        self._occurrences.setdefault(name, []).append(tree_node)
        return tree_node

    def _before(self, name: str) -> "Node | None":
        previous = self._previous
        return previous.node(name) if previous is not None and name in previous else None

    def open_gap(self, gap: ChainGap, lo: int | None = None, hi: int | None = None) -> TreeNode | None:
        """Show members lo..hi-1 of a folded run (default: its first page) in place of its row;
        what stays folded keeps a row above or below them. Returns the first member's row."""
        lo = gap.lo if lo is None else max(gap.lo, lo)
        hi = min(lo + CHAIN_PAGE, gap.hi) if hi is None else min(gap.hi, hi)
        chain, row = gap.chain, gap.tree_node
        parent = row.parent
        at = parent.children.index(row)
        row.remove()
        gap.tree_node = None
        place = chain.gaps.index(gap)
        pieces: list[_Entry | ChainGap] = list(chain.members[lo:hi])
        new_gaps = []
        if lo > gap.lo:
            new_gaps.append(ChainGap(chain, gap.lo, lo))
            pieces.insert(0, new_gaps[-1])
        if hi < gap.hi:
            new_gaps.append(ChainGap(chain, hi, gap.hi))
            pieces.append(new_gaps[-1])
        chain.gaps[place:place + 1] = new_gaps
        for offset, piece in enumerate(pieces):
            self._materialise(piece, parent, at + offset)
        return chain.members[lo].tree_node if lo < hi else None

    def _reveal(self, name: str) -> TreeNode | None:
        """The full entry's row of `name`, opening the folded runs that hide it."""
        entry = self._entries.get(name)
        if entry is None:
            return None
        hidden = []
        while entry is not None and entry.tree_node is None:
            hidden.append(entry)
            entry = entry.parent
        for entry in reversed(hidden):  # from the outermost: opening it materialises the rest
            if entry.tree_node is None and entry.member_of is not None:
                chain = entry.member_of
                gap = next(g for g in chain.gaps if g.lo <= entry.index < g.hi)
                # a few links of context on either side, as when stepping through the chain
                self.open_gap(gap, entry.index - 2, entry.index + 3)
        return self._entries[name].tree_node

    def update_values(self, snapshot: "Snapshot", previous: "Snapshot | None") -> None:
        """Relabel in place the full entries whose label changes: values, grads, deltas.

        Only entries in the Tree are relabelled (folded chain links get their label when
        they are opened). A label is made from the node, the node before the last edit and
        the flag mark; entries whose inputs are the same as when their label was made keep
        it (the engine reuses unchanged arrays, so most compare by identity).
        """
        self._snapshot, self._previous = snapshot, previous
        for name in self._full:
            key = self._label_key(name)
            if key != self._shown.get(name):
                self._shown[name] = key
                self._relabel(name)
        self._refresh_rows()

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
        """A new label for the full entry of `name` (its _shown key set by the caller); the
        caller then redraws the relabelled rows (_refresh_rows)."""
        tree_node = self._full[name]
        parts = node_parts(self._snapshot.node(name), self._before(name), name in self._flagged)
        self._parts[tree_node.id] = parts
        tree_node.defer_label(parts)
        self._stale_rows.append(tree_node)

    def _refresh_rows(self) -> None:
        """Redraw the relabelled rows on screen whose drawn label changed.

        A narrow panel shows most tensors by their shape, which an edit does not change:
        those rows keep their drawn label and are not redrawn. (TreeNode.set_label would
        redraw each row and every row below it, after scanning the rows on screen for
        them.)
        """
        rows, self._stale_rows = self._stale_rows, []
        lines = self._tree_lines
        top, (width, height) = self.scroll_offset.y, self.size
        content_width = self.scrollable_content_region.width
        regions = []
        for row in rows:
            on_screen = top <= row._line < min(top + height, len(lines)) and lines[row._line].node is row
            if on_screen and self._drawn_as_before(row, content_width):
                continue
            row._updates += 1  # part of the key of Tree's line cache, as in set_label
            if on_screen:
                regions.append(Region(0, row._line - top, width, 1))
        if regions:
            self.refresh(*regions)

    def _drawn_as_before(self, row: _Row, content_width: int) -> bool:
        """Whether the row's new label, fitted to the panel, is the one drawn already (which
        is then kept, with the pieces it was cut in)."""
        before = self._fitted.get(row.id)
        if before is None:
            return False
        text = self.drawn_label(row, content_width).text  # fitted anew: its parts are new
        parts, room, _ = self._fitted[row.id]
        drawn = before[2]
        if room != before[1] or text != drawn.text or text.style != drawn.text.style:
            return False
        self._fitted[row.id] = (parts, room, drawn)
        return True

    def set_flags(self, names: "set[str] | frozenset[str]") -> None:
        """Mark the flagged nodes (the old marks stay until the new flags arrive: no flicker)."""
        names = frozenset(names)
        changed = names ^ self._flagged
        self._flagged = names
        if self._snapshot is None:
            return
        for name in changed:
            if name in self._full and name in self._snapshot:
                self._shown[name] = self._label_key(name)
                self._relabel(name)
        self._refresh_rows()

    @property
    def highlighted_name(self) -> str | None:
        node = self.cursor_node
        return node.data.name if node is not None and isinstance(node.data, GraphRef) else None

    def show_node(self, name: str) -> None:
        """Move the cursor to the full entry of `name`, opening the folded chain links and
        unfolding the ancestors that hide it."""
        target = self._reveal(name)
        if target is None:
            return
        parent = target.parent
        while parent is not None:
            parent.expand()
            parent = parent.parent
        self._move_to(target)

    def _move_to(self, target: TreeNode) -> None:
        self._tree_lines  # lay the lines out again now, so that target.line is current
        self.move_cursor(target)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[GraphRef]) -> None:
        event.stop()
        if isinstance(event.node.data, GraphRef):
            self.post_message(Inspect(event.node.data.name))

    def on_focus(self) -> None:
        # back from another panel: the inspector shows this panel's node again
        if self.highlighted_name is not None:
            self.post_message(Inspect(self.highlighted_name))

    def on_tree_node_selected(self, event: Tree.NodeSelected[GraphRef]) -> None:
        event.stop()
        data = event.node.data
        if isinstance(data, ChainGap):
            if data.tree_node is event.node:  # not opened already by a key pressed twice
                first = self.open_gap(data)
                if first is not None:
                    self._move_to(first)
            return
        if data is None:
            return
        if data.ref:
            self.call_later(self.show_node, data.name)
        elif not event.node.allow_expand and self._snapshot is not None and self._snapshot.node(data.name).is_leaf:
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
            reason = snapshot.no_gradient_reason()
            self.root.set_label(Text(f"{output} has no grad_fn: {reason}, so autograd recorded nothing"))
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
