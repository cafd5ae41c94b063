"""Tree rows drawn straight to segments: what Textual's `Tree._render_line` draws, made cheaper.

For each row, Textual's Tree looks up its component styles, builds the guides as a Text,
asks `render_label` for the label (copied, styled, joined to the fold icon, copied again,
given the row's meta) and renders all of it through the console. An edit redraws every
row of the graph panel, so here the component styles are taken once per frame, a label
is cut into its differently styled pieces once (`DrawnLabel`), and a row is the guides,
the icon and those pieces as segments: the same text and styles, in the same order, as
the Strip Tree._render_line makes (tests/ui/test_tree_render.py compares the two).
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._segment_tools import line_pad
from textual.strip import Strip
from textual.widgets import Tree
from textual.widgets._tree import TOGGLE_STYLE, TreeDataType, TreeNode, _TreeLine


class DrawnLabel:
    """A row's label as drawn, and that label cut where its styles change.

    A piece's style sums the label's own style and the spans over the piece, in the order
    Text.render adds them; a row adds its line style before and its label style and meta
    after (Style addition is associative, so the sums are Text.render's).
    """

    __slots__ = ("text", "_pieces")

    def __init__(self, text: Text) -> None:
        self.text = text
        self._pieces: list[tuple[str, Style]] | None = None

    def pieces(self, console) -> list[tuple[str, Style]]:
        if self._pieces is None:
            self._pieces = _cut(self.text, console)
        return self._pieces


def _cut(text: Text, console) -> list[tuple[str, Style]]:
    plain = text.plain
    null = Style.null()
    resolve = console.get_style  # as Text.render: style names through the console's theme
    spans = [(span.start, span.end, resolve(span.style, default=null)) for span in text.spans]
    base = resolve(text.style, default=null) if text.style else null
    cuts = sorted({0, len(plain), *(s for s, _, _ in spans), *(e for _, e, _ in spans)})
    pieces = []
    for start, end in zip(cuts, cuts[1:]):
        style = base
        for span_start, span_end, span_style in spans:
            if span_start <= start < span_end:
                style = style + span_style
        pieces.append((plain[start:end], style))
    return pieces


class Frame:
    """What every row of one frame is drawn with, taken once: the tree's state and sizes,
    and its component styles (each looked up when first needed: a lookup after a refresh
    walks the DOM, and most frames need only a few)."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self.width = tree.size.width
        self.content_width = tree.scrollable_content_region.width
        self.hover_line = tree.hover_line
        self.cursor_line = tree.cursor_line
        self.has_focus = tree.has_focus
        self.console = tree.app.console
        self._guide_strings: dict[tuple, tuple[str, str, str, str]] = {}
        self._styles: dict[tuple[str, bool], Style] = {}
        self._guides: dict[str, tuple[Style, bool]] = {}

    def style(self, name: str, partial: bool = True) -> Style:
        """A component's rich style ("tree--label", ...), looked up once per frame."""
        key = (name, partial)
        style = self._styles.get(key)
        if style is None:
            style = self._styles[key] = self.tree.get_component_rich_style(name, partial=partial)
        return style

    def guide(self, kind: str = "") -> tuple[Style, bool]:
        """The guides' style ("hover" and "selected" add theirs to the plain one) and
        whether their colour is transparent, which draws them as spaces."""
        cached = self._guides.get(kind)
        if cached is None:
            name = f"tree--guides-{kind}" if kind else "tree--guides"
            style = self.style("tree--guides") + self.style(name) if kind else self.style(name)
            cached = self._guides[kind] = (style, self.tree.get_component_styles(name).color.a == 0)
        return cached

    def guide_strings(self, style: Style, hidden: bool) -> tuple[str, str, str, str]:
        """Space, vertical, terminator and cross, as Tree._render_line's get_guides."""
        key = (style.bold, style.underline2, hidden)
        strings = self._guide_strings.get(key)
        if strings is None:
            tree = self.tree
            if tree.show_guides and not hidden:
                lines = tree.LINES["default"]
                if style.bold:
                    lines = tree.LINES["bold"]
                elif style.underline2:
                    lines = tree.LINES["double"]
            else:
                lines = ("  ", "  ", "  ", "  ")
            depth = max(0, tree.guide_depth - 2)
            strings = self._guide_strings[key] = tuple(f"{c[0]}{c[1] * depth} " for c in lines)
        return strings


class QuickTree(Tree[TreeDataType]):
    """A Tree whose rows are drawn by `draw_row`; a subclass says which label a row shows
    (`drawn_label`)."""

    _frame: Frame | None = None  # while one frame is drawn
    _frame_style: Style | None = None  # the widget's style, likewise

    def drawn_label(self, node: TreeNode) -> DrawnLabel:
        return DrawnLabel(node._label)

    def get_label_width(self, node: TreeNode) -> int:
        # what Tree's measures (render_label's cell length), without styling a copy
        icon = (self.ICON_NODE_EXPANDED if node.is_expanded else self.ICON_NODE) if node._allow_expand else ""
        return cell_len(icon + self.drawn_label(node).text.plain)

    def render_lines(self, crop):
        # the widget's style (a walk up the DOM), its component styles and sizes once per
        # frame rather than once per row (the rows laid out first, as that sets the sizes)
        self._tree_lines
        self._frame_style, self._frame = self.rich_style, Frame(self)
        try:
            return super().render_lines(crop)
        finally:
            self._frame_style = self._frame = None

    def render_line(self, y: int) -> Strip:
        style = self._frame_style if self._frame_style is not None else self.rich_style
        scroll_x, scroll_y = self.scroll_offset
        return self._render_line(y + scroll_y, scroll_x, scroll_x + self.size.width, style)

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        # Overrides Textual's private Tree._render_line (textual is pinned in
        # constraints.txt): the same line cache and key, the row made by draw_row.
        frame = self._frame or Frame(self)
        tree_lines = self._tree_lines
        if y >= len(tree_lines):
            return Strip.blank(frame.width, base_style)
        line = tree_lines[y]
        is_hover = frame.hover_line >= 0 and any(node._hover for node in line.path)
        cache_key = (y, is_hover, frame.width, self._updates, self._pseudo_class_state,
                     tuple(node._updates for node in line.path))
        strip = self._line_cache.get(cache_key)
        if strip is None:
            strip = self.draw_row(line, y, is_hover, base_style, frame)
            if strip is None:
                return super()._render_line(y, x1, x2, base_style)
            self._line_cache[cache_key] = strip
        return strip.crop(x1, x2)

    def draw_row(self, line: _TreeLine, y: int, is_hover: bool, base_style: Style, frame: Frame) -> Strip | None:
        """Row `y`, uncropped: guides, fold icon, label, padding (None: left to Tree)."""
        line_style = (frame.style("tree--highlight-line", partial=False) if is_hover else base_style) + Style(meta={"line": y})
        path = line.path
        segments: list[Segment] = []
        # the guides: which style is Tree._render_line's rule (hover and selection pass down)
        has_focus = frame.has_focus
        hover = path[0]._hover
        selected = path[0]._selected and has_focus
        guide_style, hidden = frame.guide()[0], True
        last = path[-1]
        for node in path[1:]:
            hidden = frame.guide()[1]
            if hover:
                guide_style, hidden = frame.guide("hover")
            if selected:
                guide_style, hidden = frame.guide("selected")
            if node is not last:
                if not guide_style:
                    # an unstyled guide has no span of its own, so Text.render joins it
                    # to its neighbours: leave such a theme to Tree
                    return None
                space, vertical, _, _ = frame.guide_strings(guide_style, hidden)
                segments.append(Segment(space if node.is_last else vertical, line_style + guide_style))
            hover = hover or node._hover
            selected = (selected or node._selected) and has_focus
        if len(path) > 1:
            if not guide_style:
                return None
            _, _, terminator, cross = frame.guide_strings(guide_style, hidden)
            segments.append(Segment(terminator if line.last else cross, line_style + guide_style))

        label_style = frame.style("tree--label")
        if frame.hover_line == y:
            label_style += frame.style("tree--highlight")
        if frame.cursor_line == y:
            label_style += frame.style("tree--cursor", partial=False)
        node_meta = Style(meta={"node": line.node._id})
        if last._allow_expand:
            icon = self.ICON_NODE_EXPANDED if last.is_expanded else self.ICON_NODE
            if icon:
                segments.append(Segment(icon, line_style + (line_style + TOGGLE_STYLE) + node_meta))
        after = label_style + node_meta
        for text, style in self.drawn_label(last).pieces(frame.console):
            segments.append(Segment(text, line_style + style + after))

        drawn = cell_len("".join(segment.text for segment in segments))
        pad_width = max(self.virtual_size.width, frame.width)
        return Strip(line_pad(segments, 0, pad_width - drawn, line_style))
