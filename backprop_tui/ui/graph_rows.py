"""Which rows the graph panel shows: entries, references, long chains laid out at one level
with their middle folded into "… N more steps" rows, and folded entries.

Plain data, no widget: an `Outline` is a tree of `Entry`s; `Outline.rows()` walks what is
open into the flat list of `Row`s a widget draws one per line. Everything here walks with
an explicit stack, never recursion: a preset may chain 2,000 steps.

Two builders fill an outline: `graph_outline` (a snapshot's nodes, output first, a node's
children its inputs) and `autograd_outline` (PyTorch's grad_fn chain as the snapshot holds it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from backprop_tui.engine.snapshot import AutogradFn, Snapshot

CHAIN_MIN = 10  # a chain of at least this many steps is laid out at one level, its middle folded
CHAIN_HEAD = 3  # links shown above the "… more steps" row
CHAIN_TAIL = 3  # and below it
CHAIN_PAGE = 50  # opening that row shows this many more
SIDE_HEIGHT = 3  # a branch at most this many rows deep stays nested beside a chain's link


class Entry:
    """One place in the outline: a node in full, a reference to one shown elsewhere, an
    autograd function, or a group heading."""

    __slots__ = ("name", "kind", "data", "parent", "children", "chain", "member_of", "index", "expanded")

    def __init__(self, name: str | None, kind: str, parent: "Entry | None" = None, data: object = None) -> None:
        self.name = name  # the graph node it stands for (None: a heading, or a function of no node)
        self.kind = kind  # "node", "ref", "group" or "fn"
        self.data = data  # what the label is made from, for kinds that need more than the name
        self.parent = parent  # the entry this one sits under (None: top level)
        self.children: list[Entry] = []  # shown under it when it is open
        self.chain: Chain | None = None  # for a chain's first step: its links, at one level below it
        self.member_of: Chain | None = None  # for a link: its chain
        self.index = 0  # a link's place in its chain
        self.expanded = True

    @property
    def foldable(self) -> bool:
        return bool(self.children) or self.chain is not None

    def below(self) -> list["Entry | Gap"]:
        """What is shown under this entry when it is open, in order."""
        if self.chain is None:
            return self.children
        return self.children + self.chain.rows()


class Chain:
    """Links shown at one level under the chain's first step; folded runs of them are Gaps."""

    __slots__ = ("members", "gaps")

    def __init__(self, members: list[Entry]) -> None:
        self.members = members
        self.gaps: list[Gap] = []  # in order, not overlapping

    def rows(self) -> list["Entry | Gap"]:
        rows: list[Entry | Gap] = []
        i = 0
        for gap in self.gaps:
            rows.extend(self.members[i:gap.lo])
            rows.append(gap)
            i = gap.hi
        rows.extend(self.members[i:])
        return rows


@dataclass(eq=False)
class Gap:
    """A "… N more steps" row: members lo..hi-1 of a chain, folded."""

    chain: Chain
    lo: int
    hi: int

    @property
    def hidden(self) -> int:
        return self.hi - self.lo

    @property
    def first(self) -> Entry:
        return self.chain.members[self.lo]

    @property
    def last(self) -> Entry:
        return self.chain.members[self.hi - 1]


@dataclass(frozen=True, eq=False)
class Row:
    """One line of the panel: an entry or a gap, at a depth, with the guides drawn before it."""

    item: "Entry | Gap"
    depth: int
    guides: str  # "│ ├ ": one two-cell piece per level above the row

    @property
    def entry(self) -> Entry | None:
        return self.item if isinstance(self.item, Entry) else None


GUIDES = {2: ("  ", "│ ", "└ ", "├ "), 1: (" ", "│", "└", "├")}  # by cells a level: space, line, last, middle


class Outline:
    """The entries of one view and which of them are open."""

    def __init__(self, top: list[Entry]) -> None:
        self.top = top
        self.full: dict[str, Entry] = {}  # a node's entry in full, by name
        stack = list(top)
        while stack:
            entry = stack.pop()
            if entry.kind == "node" and entry.name is not None:
                self.full.setdefault(entry.name, entry)
            stack.extend(entry.children)
            if entry.chain is not None:
                stack.extend(entry.chain.members)

    def rows(self, guide_width: int = 2) -> list[Row]:
        """Every line shown, top to bottom: open entries show what is below them. Each
        level indents by `guide_width` cells (1 or 2)."""
        space, line, last_guide, middle = GUIDES[guide_width]
        rows: list[Row] = []
        # (item, depth, guides of the levels above, last among its siblings)
        stack: list[tuple[Entry | Gap, int, str, bool]] = [
            (entry, 0, "", i == len(self.top) - 1) for i, entry in reversed(list(enumerate(self.top)))]
        while stack:
            item, depth, above, last = stack.pop()
            guides = above + (last_guide if last else middle) if depth else ""
            rows.append(Row(item, depth, guides))
            if isinstance(item, Entry) and item.expanded and item.foldable:
                below = item.below()
                inner = above + (space if last else line) if depth else ""
                stack.extend((child, depth + 1, inner, i == len(below) - 1)
                             for i, child in reversed(list(enumerate(below))))
        return rows

    def open_gap(self, gap: Gap, lo: int | None = None, hi: int | None = None) -> Entry | None:
        """Show members lo..hi-1 of a folded run (default: its first page); what stays
        folded keeps a row above or below them. Returns the first member shown."""
        lo = gap.lo if lo is None else max(gap.lo, lo)
        hi = min(lo + CHAIN_PAGE, gap.hi) if hi is None else min(gap.hi, hi)
        if lo >= hi or gap not in gap.chain.gaps:
            return None
        chain = gap.chain
        place = chain.gaps.index(gap)
        rest = []
        if lo > gap.lo:
            rest.append(Gap(chain, gap.lo, lo))
        if hi < gap.hi:
            rest.append(Gap(chain, hi, gap.hi))
        chain.gaps[place:place + 1] = rest
        return chain.members[lo]

    def reveal(self, entry: Entry) -> None:
        """Open the folded runs and the folded entries that hide `entry`."""
        child, parent = entry, entry.parent
        while parent is not None:
            if child.member_of is not None:
                chain = child.member_of
                gap = next((g for g in chain.gaps if g.lo <= child.index < g.hi), None)
                if gap is not None:  # a few links of context on either side
                    self.open_gap(gap, child.index - 2, child.index + 3)
            parent.expanded = True
            child, parent = parent, parent.parent


def fold_chains(chain: Chain) -> None:
    members = chain.members
    if len(members) > CHAIN_HEAD + CHAIN_TAIL + 1:
        chain.gaps.append(Gap(chain, CHAIN_HEAD, len(members) - CHAIN_TAIL))


def _make_chain(head: Entry, links: list[Entry]) -> None:
    """`links` (each a child of the one before, the first a child of `head`) move to one
    level under `head`; each keeps its other children."""
    chain = Chain(links)
    for index, (above, link) in enumerate(zip([head] + links, links)):
        above.children.remove(link)
        link.parent, link.member_of, link.index = head, chain, index
    head.chain = chain
    fold_chains(chain)


def _heights(top: Iterable[Entry]) -> dict[int, int]:
    """Rows from each entry down to its deepest descendant (1 for an entry with nothing below)."""
    heights: dict[int, int] = {}
    stack: list[tuple[Entry, bool]] = [(entry, False) for entry in top]
    while stack:
        entry, done = stack.pop()
        below = entry.children + (entry.chain.members if entry.chain is not None else [])
        if done:
            heights[id(entry)] = 1 + max((heights[id(c)] for c in below), default=0)
        else:
            stack.append((entry, True))
            stack.extend((c, False) for c in below)
    return heights


def lay_tall_chains_flat(top: list[Entry]) -> None:
    """Wherever an entry has one tall child and the rest short, and that child likewise, for
    at least CHAIN_MIN steps, lay the run out at one level as a chain: a 2,000-step diamond
    reads as a list of steps, not 4,000 levels of indent."""
    heights = _heights(top)
    stack = list(top)
    while stack:
        entry = stack.pop()
        if entry.chain is None:
            links = []
            link = entry
            while True:
                tall = [c for c in link.children if heights[id(c)] > SIDE_HEIGHT]
                if len(tall) != 1 or tall[0].kind == "ref":
                    break
                link = tall[0]
                links.append(link)
            if len(links) >= CHAIN_MIN:
                _make_chain(entry, links)
        stack.extend(entry.children)
        if entry.chain is not None:
            stack.extend(entry.chain.members)


# ------------------------------------------------------------------ the graph of named nodes


def _chainable(node) -> bool:
    """A computed node used by exactly one other node: a link a chain can pass through."""
    return bool(node.inputs) and len(node.consumers) == 1


def chain_below(name: str, snapshot: "Snapshot") -> list[str]:
    """The steps that feed one into the next below `name`, `name` first.

    Each step after the first is the only computed input of the step above it and is used
    by nothing else, so the chain reads top to bottom with nothing branching off it but
    leaves and other inputs (shown under each link).
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


def graph_outline(snapshot: "Snapshot") -> Outline:
    """The output at the top, each node's inputs below it. The first place a node is reached,
    in the order rows are shown, holds it in full; later places hold references. Nodes the
    output does not depend on come last, under a heading."""
    seen: set[str] = set()
    top: list[Entry] = []
    _lay_out(snapshot.output, None, top, snapshot, seen)
    unreachable = [n.name for n in reversed(snapshot.nodes) if n.name not in seen]
    if unreachable:
        group = Entry(None, "group", data=f"not on the path to {snapshot.output} (no gradient flows here)")
        top.append(group)
        for name in unreachable:
            if name not in seen:
                _lay_out(name, group, group.children, snapshot, seen)
    lay_tall_chains_flat(top)
    return Outline(top)


def _lay_out(start: str, parent: Entry | None, siblings: list[Entry], snapshot: "Snapshot", seen: set[str]) -> None:
    stack: list[tuple[str, Entry | None, list[Entry]]] = [(start, parent, siblings)]
    while stack:
        name, under, into = stack.pop()
        if name in seen:
            into.append(Entry(name, "ref", under))
            continue
        entry = Entry(name, "node", under)
        into.append(entry)
        seen.add(name)
        node = snapshot.node(name)
        chain = chain_below(name, snapshot)
        if len(chain) < CHAIN_MIN:
            stack.extend((i, entry, entry.children) for i in reversed(node.inputs))
            continue
        # the chain at one level under its first step: each link shows its side inputs; the
        # last link, where the chain ends, shows all its inputs
        members = [Entry(link, "node", entry) for link in chain[1:]]
        entry.chain = Chain(members)
        for index, member in enumerate(members):
            member.member_of, member.index = entry.chain, index
            seen.add(member.name)
        fold_chains(entry.chain)
        tasks = []
        for k, step in enumerate([entry] + members):
            below = chain[k + 1] if k + 1 < len(chain) else None
            tasks.extend((i, step, step.children) for i in snapshot.node(step.name).inputs if i != below)
        stack.extend(reversed(tasks))


# ------------------------------------------------------------------ PyTorch's grad_fn chain


def autograd_outline(snapshot: "Snapshot") -> Outline:
    """`output.grad_fn` and its next_functions. A function that produced another named node
    is opened there the first time it is reached, and marked as shown above after that."""
    output = snapshot.output
    root_fn = snapshot.autograd.get(output)
    if root_fn is None:
        return Outline([Entry(output, "fn-none", data=snapshot.no_gradient_reason())])
    root = Entry(output, "fn-root")
    expanded: set[str] = {output}
    stack: list[tuple[Entry, AutogradFn]] = [(root, root_fn)]
    while stack:
        under, fn = stack.pop()
        children: tuple = fn.children
        repeated = False
        if fn.ref and fn.node is not None:
            if fn.node in expanded:
                repeated, children = True, ()
            else:
                expanded.add(fn.node)
                chain = snapshot.autograd.get(fn.node)
                children = chain.children if chain is not None else ()
        entry = Entry(fn.node, "fn", under, data=(fn, repeated))
        under.children.append(entry)
        stack.extend((entry, child) for child in reversed(children))
    lay_tall_chains_flat([root])
    return Outline([root])
