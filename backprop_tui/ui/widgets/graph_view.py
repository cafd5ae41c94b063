"""The graph panel: the computational graph rooted at the output, and PyTorch's grad_fn chain.

Both views draw the rows of an outline (ui/graph_rows.py) on Textual's line API: a
ScrollView whose `render_line` makes one row's Strip, kept in an LRUCache. An edit relabels
the rows whose numbers changed and repaints only those (`refresh_lines`); folding or
opening a chain lays the rows out again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.containers import Vertical
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from backprop_tui.ui.graph_labels import (
    NodeLabel, autograd_label, autograd_root_label, gap_label, heading_label, ref_label,
)
from backprop_tui.ui.graph_rows import CHAIN_PAGE, Entry, Gap, Outline, Row, autograd_outline, graph_outline
from backprop_tui.ui.messages import Inspect, OpenInEditor

if TYPE_CHECKING:
    import numpy as np

    from backprop_tui.engine.snapshot import Snapshot

ICON_OPEN, ICON_FOLDED = "▼ ", "▶ "
ICON_WIDTH = 2
NARROWEST_NUMBERS = 24  # ` 0.811… grad +1.29e-05…`: a label's numbers at their narrowest, about


class ArrayKey:
    """An array compared by its exact bytes (nan and -0.0 included), by identity first."""

    __slots__ = ("array",)

    def __init__(self, array: "np.ndarray | None") -> None:
        self.array = array

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ArrayKey):
            return NotImplemented
        a, b = self.array, other.array
        if a is b:
            return True
        if a is None or b is None or a.shape != b.shape or a.dtype != b.dtype:
            return False
        return a.tobytes() == b.tobytes()

    __hash__ = None  # type: ignore[assignment]


class OutlineView(ScrollView, can_focus=True):
    """Rows of an Outline with a cursor; a subclass says what each row's label is."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"outline--cursor", "outline--guides", "outline--icon"}
    DEFAULT_CSS = """
    OutlineView {
        background: $surface;
        & > .outline--guides { color: $surface-lighten-2; }
        & > .outline--icon { }
        & > .outline--cursor {
            text-style: $block-cursor-blurred-text-style;
            background: $block-cursor-blurred-background;
        }
        &:focus {
            background-tint: $foreground 5%;
            & > .outline--guides { color: $surface-lighten-3; }
            & > .outline--cursor {
                color: $block-cursor-foreground;
                background: $block-cursor-background;
                text-style: $block-cursor-text-style;
            }
        }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First row", show=False),
        Binding("end", "last", "Last row", show=False),
        Binding("space", "toggle", "Fold", show=False),
        Binding("left", "fold_or_parent", "Fold or go to the parent", show=False),
        Binding("right", "unfold_or_child", "Unfold or go to the first child", show=False),
    ]
    FIT_LABELS = True  # labels fitted to the panel's width; False: rows scroll sideways

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.outline: Outline | None = None
        self.rows: list[Row] = []
        self.row_index: dict[int, int] = {}  # id(entry or gap) -> its row
        self.cursor = 0
        self.strips: LRUCache[tuple, Strip] = LRUCache(1024)
        self.row_width = 0  # the widest row, where labels are not fitted

    # ---------------------------------------------------------------- what subclasses say

    def label(self, row: Row, room: int | None) -> tuple[Text, object]:
        """The row's label fitted to `room` cells (None: whole) and a key that changes
        whenever the label does."""
        raise NotImplementedError

    def highlighted(self, row: Row) -> None:
        """The cursor came to `row`."""

    # ---------------------------------------------------------------- layout

    def show_outline(self, outline: Outline) -> None:
        """Show a new outline, the cursor on its first row."""
        self.outline = outline
        self.strips.clear()
        self.cursor = 0
        self.lay_out(keep=None)
        self.scroll_to(0, 0, animate=False)

    def lay_out(self, keep: "Entry | Gap | None") -> None:
        """The rows again after a fold or a chain opened; the cursor stays on `keep`'s row."""
        self.rows = self.outline.rows() if self.outline is not None else []
        if self.needs_narrow_guides(self.rows):
            self.rows = self.outline.rows(guide_width=1)
        self.row_index = {id(row.item): i for i, row in enumerate(self.rows)}
        if keep is not None and id(keep) in self.row_index:
            self.cursor = self.row_index[id(keep)]
        self.cursor = max(0, min(self.cursor, len(self.rows) - 1))
        if not self.FIT_LABELS:
            self.row_width = self.widest(self.rows)
        self.update_virtual_size()
        self.refresh()

    def widest(self, rows: list[Row]) -> int:
        return max((len(row.guides) + self.icon_width(row) + self.label(row, None)[0].cell_len for row in rows),
                   default=0)

    def needs_narrow_guides(self, rows: list[Row]) -> bool:
        """Whether two cells a level would leave a deep row too little room for its name and
        numbers (NARROWEST_NUMBERS cells, about), or where labels are not fitted, for its
        whole label: then each level indents one cell."""
        width = self.scrollable_content_region.width
        if width <= 0:
            return False
        if not self.FIT_LABELS:
            return self.widest(rows) > width
        return any(len(row.guides) + self.icon_width(row) + len(row.item.name) + NARROWEST_NUMBERS > width
                   for row in rows if row.entry is not None and row.entry.kind == "node")

    def update_virtual_size(self) -> None:
        width = 0 if self.FIT_LABELS else self.row_width
        self.virtual_size = Size(width, len(self.rows))

    def on_resize(self, event: events.Resize) -> None:
        if self.rows:
            self.lay_out(keep=self.rows[self.cursor].item)  # the indent may change with the width
        self.update_virtual_size()

    # ---------------------------------------------------------------- drawing

    @staticmethod
    def icon_width(row: Row) -> int:
        """Cells of the fold arrow: a row with nothing below it has none."""
        return ICON_WIDTH if row.entry is not None and row.entry.foldable else 0

    def room(self, row: Row) -> int | None:
        if not self.FIT_LABELS:
            return None
        return max(1, self.scrollable_content_region.width - len(row.guides) - self.icon_width(row))

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = y + scroll_y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if index >= len(self.rows):
            return Strip.blank(width, base)
        row = self.rows[index]
        room = self.room(row)
        text, label_key = self.label(row, room)
        is_cursor = index == self.cursor
        key = (id(row.item), row.guides, room, label_key, is_cursor, self.has_focus, self.app.theme)
        strip = self.strips.get(key)
        if strip is None:
            strip = self.draw(row, text, is_cursor, base)
            self.strips[key] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def draw(self, row: Row, label: Text, is_cursor: bool, base: Style) -> Strip:
        line = Text(row.guides, style=self.get_component_rich_style("outline--guides"), no_wrap=True, end="")
        entry = row.entry
        if entry is not None and entry.foldable:
            line.append(ICON_OPEN if entry.expanded else ICON_FOLDED, self.get_component_rich_style("outline--icon"))
        start = len(line)
        line.append_text(label)
        if is_cursor:
            line.stylize(self.get_component_rich_style("outline--cursor"), start)
        line.stylize_before(base)
        return Strip(line.render(self.app.console), line.cell_len)

    def refresh_row(self, index: int) -> None:
        if 0 <= index < len(self.rows):
            self.refresh_lines(index)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # ---------------------------------------------------------------- the cursor

    @property
    def cursor_row(self) -> Row | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def move_cursor(self, index: int) -> None:
        """Put the cursor on row `index`, scroll it into view, and say so."""
        if not self.rows:
            return
        index = max(0, min(index, len(self.rows) - 1))
        before, self.cursor = self.cursor, index
        self.refresh_row(before)
        self.refresh_row(index)
        self.scroll_to_row(index)
        self.highlighted(self.rows[index])

    def scroll_to_row(self, index: int) -> None:
        height = self.scrollable_content_region.height
        top = self.scroll_offset.y
        if index < top:
            self.scroll_to(y=index, animate=False)
        elif height > 0 and index >= top + height:
            self.scroll_to(y=index - height + 1, animate=False)

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor - max(1, self.scrollable_content_region.height - 1))

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor + max(1, self.scrollable_content_region.height - 1))

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(len(self.rows) - 1)

    # ---------------------------------------------------------------- folding

    def toggle(self, entry: Entry) -> None:
        if entry.foldable:
            entry.expanded = not entry.expanded
            self.lay_out(keep=self.rows[self.cursor].item if self.rows else None)

    def open_gap(self, gap: Gap) -> None:
        """Show the next page of a folded run, the cursor on its first step."""
        first = self.outline.open_gap(gap)
        self.lay_out(keep=first)
        if first is not None:
            self.move_cursor(self.row_index[id(first)])

    def action_toggle(self) -> None:
        row = self.cursor_row
        if row is not None and row.entry is not None:
            self.toggle(row.entry)
        elif row is not None:
            self.open_gap(row.item)

    def action_fold_or_parent(self) -> None:
        row = self.cursor_row
        if row is None:
            return
        entry = row.entry
        if entry is not None and entry.foldable and entry.expanded:
            self.toggle(entry)
            return
        parent = entry.parent if entry is not None else row.item.chain.members[0].parent
        if parent is not None and id(parent) in self.row_index:
            self.move_cursor(self.row_index[id(parent)])

    def action_unfold_or_child(self) -> None:
        row = self.cursor_row
        if row is None or row.entry is None or not row.entry.foldable:
            return
        if not row.entry.expanded:
            self.toggle(row.entry)
        else:
            self.move_cursor(self.cursor + 1)

    def on_click(self, event: events.Click) -> None:
        """A click selects its row; on the fold arrow it folds or unfolds the row."""
        offset = event.get_content_offset(self)
        if offset is None:
            return
        index = offset.y + self.scroll_offset.y
        if not 0 <= index < len(self.rows):
            return
        row = self.rows[index]
        x = offset.x + self.scroll_offset.x
        on_arrow = len(row.guides) <= x < len(row.guides) + self.icon_width(row)
        self.move_cursor(index)
        if on_arrow and row.entry is not None and row.entry.foldable:
            self.toggle(row.entry)

    # ---------------------------------------------------------------- reading what is drawn

    def drawn_label(self, index: int) -> Text:
        """Row `index`'s label as drawn at the panel's width."""
        row = self.rows[index]
        return self.label(row, self.room(row))[0]

    def row_text(self, index: int) -> str:
        """Row `index` as drawn at the panel's width: guides, fold arrow, label."""
        strip = self.draw(self.rows[index], self.drawn_label(index), False, Style())
        return "".join(segment.text for segment in strip)

    def lines(self) -> list[str]:
        return [self.row_text(i) for i in range(len(self.rows))]


class GraphView(OutlineView):
    """Output at the top, inputs below; labels updated in place on every edit.

    A node used by several consumers is shown in full once and as a `↪` reference
    elsewhere. A long chain (each step the only computed input of the one above, used by
    nothing else) is shown at one level below its first step: its first and last few
    links, and a "… N more steps" row between them that enter opens in pages.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select", "Open/fold", id="graph.select",
                tooltip="Fold or unfold a node; on a leaf, edit it in the weight editor; on a reference, jump to "
                        "the full entry; on '… N more steps', open the next steps of a long chain."),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.snapshot: Snapshot | None = None
        self.previous: Snapshot | None = None
        self.flagged: frozenset[str] = frozenset()
        self.node_labels: dict[str, tuple[tuple, NodeLabel, int]] = {}  # name -> (key, label, serial)
        self.serial = 0

    def build(self, snapshot: "Snapshot") -> None:
        """Lay out the rows of a newly loaded preset (not called for edits)."""
        self.snapshot, self.previous = snapshot, None
        self.flagged = frozenset()  # a new preset: its flags arrive after the first analysis
        self.node_labels = {}
        self.show_outline(graph_outline(snapshot))

    # ---------------------------------------------------------------- labels

    def label_key(self, name: str) -> tuple:
        """What a node's label is made from: its numbers, the numbers before the last edit
        (where they differ), its flag. The engine reuses unchanged arrays, so most compare
        by identity."""
        node = self.snapshot.node(name)
        previous = self.previous
        before = previous.node(name) if previous is not None and name in previous else None
        value, grad = ArrayKey(node.value), ArrayKey(node.grad)
        if before is None:
            deltas = (None, None)
        else:  # an unchanged array shows no delta, as if there were no previous snapshot
            old_value, old_grad = ArrayKey(before.value), ArrayKey(before.grad)
            deltas = (None if old_value == value else old_value, None if old_grad == grad else old_grad)
        return node.expr, node.kind, node.shape, value, grad, deltas, name in self.flagged

    def node_label(self, name: str) -> tuple[NodeLabel, int]:
        """The current label of node `name`, made when first needed after it changed."""
        made = self.node_labels.get(name)
        if made is None:
            made = self.make_label(name, self.label_key(name))
        return made[1], made[2]

    def make_label(self, name: str, key: tuple) -> tuple[tuple, NodeLabel, int]:
        previous = self.previous
        before = previous.node(name) if previous is not None and name in previous else None
        self.serial += 1
        made = self.node_labels[name] = (key, NodeLabel(self.snapshot.node(name), before, name in self.flagged),
                                         self.serial)
        return made

    def label(self, row: Row, room: int | None) -> tuple[Text, object]:
        item = row.item
        if isinstance(item, Gap):
            text = gap_label(item.hidden, item.first.name, item.last.name, CHAIN_PAGE, room)
            return text, (item.lo, item.hi)
        if item.kind == "node":
            label, serial = self.node_label(item.name)
            return (label.full() if room is None else label.fit(room)), serial
        if item.kind == "ref":
            return ref_label(item.name, room), None
        return heading_label(str(item.data), room), None

    def full_label(self, name: str) -> Text:
        """Node `name`'s label with no width limit."""
        return self.node_label(name)[0].full()

    # ---------------------------------------------------------------- edits

    def update_values(self, snapshot: "Snapshot", previous: "Snapshot | None") -> None:
        """Relabel the nodes whose label changes (values, grads, deltas), and repaint the
        rows whose drawn label changed. Labels not drawn yet are made when they are."""
        self.snapshot, self.previous = snapshot, previous
        self.relabel(list(self.node_labels))

    def relabel(self, names: list[str]) -> None:
        top = self.scroll_offset.y
        in_view = range(top, top + max(1, self.scrollable_content_region.height))
        for name in names:
            made = self.node_labels.get(name)
            if made is None:
                continue
            if name not in self.snapshot:
                del self.node_labels[name]
                continue
            key = self.label_key(name)
            if key == made[0]:
                continue
            entry = self.outline.full.get(name) if self.outline is not None else None
            index = self.row_index.get(id(entry)) if entry is not None else None
            if index is None or index not in in_view:  # folded away or scrolled off: made again when drawn
                del self.node_labels[name]
                continue
            row = self.rows[index]
            room = self.room(row)
            old = made[1].fit(room)
            new = self.make_label(name, key)[1].fit(room)
            if new != old or new.style != old.style:
                self.refresh_row(index)

    def set_flags(self, names: "set[str] | frozenset[str]") -> None:
        """Mark the flagged nodes (the old marks stay until the new flags arrive: no flicker)."""
        names = frozenset(names)
        changed = names ^ self.flagged
        self.flagged = names
        if self.snapshot is not None:
            self.relabel([name for name in changed if name in self.node_labels])

    # ---------------------------------------------------------------- the cursor

    @property
    def highlighted_name(self) -> str | None:
        row = self.cursor_row
        return row.item.name if row is not None and row.entry is not None else None

    def highlighted(self, row: Row) -> None:
        if row.entry is not None and row.entry.name is not None:
            self.post_message(Inspect(row.entry.name))

    def row_of(self, name: str) -> int | None:
        """The row of node `name`'s full entry, if it is shown."""
        entry = self.outline.full.get(name) if self.outline is not None else None
        return None if entry is None else self.row_index.get(id(entry))

    def show_node(self, name: str) -> None:
        """Move the cursor to the full entry of `name`, opening what hides it."""
        entry = self.outline.full.get(name) if self.outline is not None else None
        if entry is None:
            return
        self.outline.reveal(entry)
        self.lay_out(keep=None)
        self.move_cursor(self.row_index[id(entry)])

    def on_focus(self) -> None:
        super().on_focus()
        # back from another panel: the inspector shows this panel's node again
        if self.highlighted_name is not None:
            self.post_message(Inspect(self.highlighted_name))

    def action_select(self) -> None:
        row = self.cursor_row
        if row is None:
            return
        entry = row.entry
        if entry is None:
            self.open_gap(row.item)
        elif entry.kind == "ref":
            self.show_node(entry.name)
        elif entry.foldable:
            self.toggle(entry)
        elif entry.kind == "node" and self.snapshot is not None and self.snapshot.node(entry.name).is_leaf:
            self.post_message(OpenInEditor(entry.name))


class AutogradView(OutlineView):
    """`output.grad_fn` and its `next_functions`, as PyTorch holds them; names are never cut
    (the view scrolls sideways)."""

    FIT_LABELS = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "toggle", "Open/fold", show=False),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.shown: tuple | None = None

    def show_chain(self, snapshot: "Snapshot") -> None:
        """Lay out again only when the chain changed (toggling requires_grad can change it)."""
        key = (snapshot.output, dict(snapshot.autograd))
        if self.shown == key:
            return
        self.shown = key
        self.show_outline(autograd_outline(snapshot))

    def label(self, row: Row, room: int | None) -> tuple[Text, object]:
        item = row.item
        if isinstance(item, Gap):
            return gap_label(item.hidden, self.title(item.first), self.title(item.last), CHAIN_PAGE), None
        if item.kind == "fn":
            fn, repeated = item.data
            return autograd_label(fn, repeated), None
        return autograd_root_label(item.name, item.kind == "fn-root", item.data), None

    @staticmethod
    def title(entry: Entry) -> str:
        fn = entry.data[0] if entry.kind == "fn" else None
        return fn.name if fn is not None else str(entry.name)

    def highlighted(self, row: Row) -> None:
        if row.entry is not None and row.entry.name is not None:
            self.post_message(Inspect(row.entry.name))


class GraphPanel(Vertical):
    """`#graph`: the node graph, or (key `a`) the raw autograd chain."""

    ALLOW_MAXIMIZE = True  # maximized whole, so `a` switches views inside it
    BINDINGS = [
        Binding("a", "toggle_autograd", "grad_fn view", id="graph.autograd",
                tooltip="Switch between the graph of named nodes and PyTorch's raw grad_fn chain."),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.snapshot: Snapshot | None = None

    def compose(self):
        yield GraphView(id="graph-view")
        yield AutogradView(id="autograd-view")

    def on_mount(self) -> None:
        self.border_title = "Graph: output ← inputs"
        self.query_one(AutogradView).display = False

    @property
    def raw_view(self) -> bool:
        return self.query_one(AutogradView).display

    def load(self, snapshot: "Snapshot") -> None:
        self.query_one(GraphView).build(snapshot)
        self.update_snapshot(snapshot, None)

    def update_snapshot(self, snapshot: "Snapshot", previous: "Snapshot | None") -> None:
        self.query_one(GraphView).update_values(snapshot, previous)
        self.snapshot = snapshot
        if self.raw_view:
            self.query_one(AutogradView).show_chain(snapshot)

    def action_toggle_autograd(self) -> None:
        graph, raw = self.query_one(GraphView), self.query_one(AutogradView)
        show_raw = not raw.display
        if show_raw and self.snapshot is not None:
            raw.show_chain(self.snapshot)
        raw.display, graph.display = show_raw, not show_raw
        self.border_title = "Autograd: grad_fn chain (raw)" if show_raw else "Graph: output ← inputs"
        shown, hidden = (raw, graph) if show_raw else (graph, raw)
        if self.screen.maximized is hidden:  # the maximized view stays on screen
            self.screen.maximize(shown, container=False)
        shown.focus()
