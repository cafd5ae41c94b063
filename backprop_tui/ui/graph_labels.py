"""What a graph row says, fitted to the cells it has.

A node's label is its name, a detail (` = w * x` for a step, ` param` for a leaf), its value
and its grad. When the row is narrow the detail is shortened, then dropped, before a single
number goes: a scalar keeps all its digits, a tensor at least its shape and first element;
a name is never cut while anything else is drawn. Numbers are rounded (format.fmt), never cut.
Labels are `rich.text.Text`, so names such as `W1[0,1]` stay literal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from rich.cells import cell_len
from rich.text import Text

from backprop_tui.ui.format import (
    CHANGED, DELTA, FLAG_MARK, NO_GRAD, PREVIEW_DIGITS, changed, changed_words, delta_text, grad_number, scalar_delta,
    shape_text, value_number,
)

if TYPE_CHECKING:
    from backprop_tui.engine.snapshot import AutogradFn, Node

SHORT_KIND = {"parameter": "param"}
ELEMENTS = (3, 2, 1)  # elements a tensor preview shows, most first
WIDE_ELEMENTS = (8, 5)  # shown only where the whole label, expression included, still fits
MIN_EXPR = 4  # characters of an expression worth showing before the "…"


def _cells(array: np.ndarray, grad: bool, mask: np.ndarray | None) -> list[Text]:
    """The first elements a preview can show, formatted once (changed ones reversed)."""
    flat = array.reshape(-1)[: WIDE_ELEMENTS[0]]
    flat_mask = None if mask is None else mask.reshape(-1)
    cells = []
    for i, x in enumerate(flat):
        cell = grad_number(x, PREVIEW_DIGITS) if grad else value_number(x, PREVIEW_DIGITS)
        if flat_mask is not None and flat_mask[i]:
            cell.stylize(CHANGED)
        cells.append(cell)
    return cells


def _preview(array: np.ndarray, cells: list[Text], elements: int, shape: bool, tight: bool = False) -> Text:
    """`[2×3] 3 11 3 …`: the shape (for a value) and the first elements."""
    # the grad has the value's shape: shown once, with the value
    text = Text(f"[{shape_text(array.shape)}] " if shape else "", style="dim")
    for i, cell in enumerate(cells[:elements]):
        if i:
            text.append(" ")
        text.append_text(cell)
    if array.size > elements:
        text.append("…" if tight else " …", style="dim")
    return text


class Forms:
    """A list of label forms made only when first read, each with its width known before:
    an edit relabels every node in view, and fitting a row tries form after form."""

    __slots__ = ("_specs", "_made")

    def __init__(self, specs: list) -> None:
        self._specs = specs  # per form, fullest first: a callable making it, or (make, width)
        self._made: dict[int, Text] = {}

    def __len__(self) -> int:
        return len(self._specs)

    def __getitem__(self, i: int) -> Text:
        i = range(len(self._specs))[i]  # negative indices; IndexError past the end
        text = self._made.get(i)
        if text is None:
            spec = self._specs[i]
            text = self._made[i] = spec[0]() if isinstance(spec, tuple) else spec()
        return text

    def at(self, i: int) -> Text:
        """Form i, or the narrowest one past the end (a value and a grad pair their forms)."""
        return self[self.clamp(i)]

    def clamp(self, i: int) -> int:
        return min(i, len(self._specs) - 1)

    def width(self, i: int) -> int:
        """The cells form i takes (the narrowest past the end), without making it."""
        i = range(len(self._specs))[self.clamp(i)]
        spec = self._specs[i]
        return spec[1]() if isinstance(spec, tuple) and i not in self._made else self[i].cell_len


class Numbers:
    """A node's value or grad in its forms, fullest first; form k of the value and of the
    grad go together (the same number of elements)."""

    __slots__ = ("forms", "wide")

    def __init__(self, array: "np.ndarray | None", old: "np.ndarray | None", grad: bool) -> None:
        self.wide = Forms([])
        if array is None:
            self.forms = Forms([lambda: Text("no grad", style=NO_GRAD)])
            return
        if array.ndim == 0 or (array.size == 1 and not array.shape):
            number = float(array.reshape(-1)[0])
            delta = scalar_delta(array, old)

            def plain() -> Text:
                text = grad_number(number) if grad else value_number(number)
                if delta is not None:
                    text.stylize("bold" if grad else CHANGED)
                return text

            self.forms = Forms([plain] if delta is None else [lambda: plain() + delta_text(delta), plain])
            return
        made: list = []

        def cells_and_words() -> tuple[list[Text], Text, Text, list[int]]:
            if not made:
                mask = changed(array, old)
                count = int(mask.sum()) if mask is not None else 0
                long_words = Text(changed_words(count, array.size), style=DELTA) if count else Text()
                short_words = Text(" (changed)", style=DELTA) if count else Text()
                cells = _cells(array, grad, mask)
                made.append((cells, long_words, short_words, [c.cell_len for c in cells]))
            return made[0]

        def form(elements: int, words: int = 0, shape: bool = not grad, tight: bool = False):
            """words: 0 none, 1 short, 2 long (the changed elements are also drawn reversed)."""
            def make() -> Text:
                cells, long_words, short_words, _ = cells_and_words()
                return _preview(array, cells, elements, shape, tight) + (Text(), short_words, long_words)[words]

            def width() -> int:  # what make() draws, counted: _preview's pieces
                _, long_words, short_words, widths = cells_and_words()
                shown = widths[:elements]
                cells_len = sum(shown) + max(0, len(shown) - 1)
                more = (1 if tight else 2) if array.size > elements else 0
                head = len(f"[{shape_text(array.shape)}] ") if shape else 0
                return head + cells_len + more + (0, short_words.cell_len, long_words.cell_len)[words]

            return make, width

        self.wide = Forms([form(e, 2) for e in WIDE_ELEMENTS] if array.size > ELEMENTS[0] else [])
        # the words go before an element does
        most = ELEMENTS[0]
        specs = [form(most, 2), form(most, 1)] + [form(e) for e in ELEMENTS]
        if not grad:  # narrower: the first element without the shape (the grad never has it)
            specs.append(form(1, shape=False))
        specs.append(form(1, shape=False, tight=True))  # the narrowest: `0.5…`
        self.forms = Forms(specs)


class NodeLabel:
    """A node's label in pieces, fitted to a width by `fit`."""

    __slots__ = ("name", "expr", "kind", "values", "grads", "_fits")

    def __init__(self, node: "Node", previous: "Node | None", flagged: bool = False) -> None:
        self.name = Text(node.name, style="bold")
        if flagged:
            self.name.append(f" {FLAG_MARK}", style="bold yellow")
        self.expr = node.expr  # shortened to fit
        self.kind = SHORT_KIND.get(node.kind, node.kind)  # shown for a leaf
        self.values = Numbers(node.value, None if previous is None else previous.value, grad=False)
        self.grads = Numbers(node.grad, None if previous is None else previous.grad, grad=True)
        self._fits: dict[int, Text] = {}

    def detail(self, room: int | None = None) -> Text:
        """` = expr` (cut to `room` cells with "…") or ` param`."""
        if not self.expr:
            return Text(f" {self.kind}", style="dim")
        expr = self.expr
        if room is not None and cell_len(expr) + 3 > room:
            expr = expr[: max(0, room - 4)] + "…"
        return Text(f" = {expr}", style="cyan")

    def numbers(self, value: Text | None, grad: Text | None, space: str = "  ") -> Text:
        text = Text()
        if value is not None:
            text.append(space)
            text.append_text(value)
        if grad is not None:
            text.append(space)
            if grad.plain != "no grad":
                text.append("grad ", style="dim")
            text.append_text(grad)
        return text

    def full(self) -> Text:
        """The label with no width limit."""
        value = (self.values.wide if len(self.values.wide) else self.values.forms)[0]
        grad = (self.grads.wide if len(self.grads.wide) else self.grads.forms)[0]
        return self.name + self.detail() + self.numbers(value, grad)

    def fit(self, width: int) -> Text:
        """The fullest label at most `width` cells wide (kept: rows are drawn again and again)."""
        text = self._fits.get(width)
        if text is None:
            text = self._fits[width] = self._fit(width)
        return text

    @staticmethod
    def numbers_width(value: int | None, grad: int | None, no_grad: bool, space: int = 2) -> int:
        """The cells `numbers` takes for a value and a grad `value` and `grad` cells wide."""
        cells = 0 if value is None else space + value
        if grad is not None:
            cells += space + grad + (0 if no_grad else len("grad "))
        return cells

    def _fit(self, width: int) -> Text:
        name, name_len = self.name, self.name.cell_len
        detail = self.detail()
        detail_len = detail.cell_len
        values, grads = self.values, self.grads
        no_grad = grads.forms[0].plain == "no grad"
        grad_wide = grads.wide if len(grads.wide) else Forms([lambda: grads.forms[0]])
        for i in range(len(values.wide)):
            if name_len + detail_len + self.numbers_width(values.wide.width(i), grad_wide.width(i), no_grad) <= width:
                return name + detail + self.numbers(values.wide[i], grad_wide.at(i))
        count = max(len(values.forms), len(grads.forms))
        # the grad gives up a piece (its delta, an element) one step before the value does
        steps = [(i, j) for i in range(count) for j in (i, i + 1)]
        for i, j in steps:
            base = name_len + self.numbers_width(values.forms.width(i), grads.forms.width(j), no_grad)
            room = width - base
            if room >= detail_len:
                return name + detail + self.numbers(values.forms.at(i), grads.forms.at(j))
            if self.expr and room >= 3 + MIN_EXPR + 1:
                return name + self.detail(room) + self.numbers(values.forms.at(i), grads.forms.at(j))
            if room >= 0:
                return name + self.numbers(values.forms.at(i), grads.forms.at(j))
        # the narrowest forms, single-spaced; then the value alone, then the name alone
        if name_len + self.numbers_width(values.forms.width(-1), grads.forms.width(-1), no_grad, 1) <= width:
            return name + self.numbers(values.forms[-1], grads.forms[-1], " ")
        if name_len + self.numbers_width(values.forms.width(-1), None, no_grad) <= width:
            return name + self.numbers(values.forms[-1], None)
        text = name.copy()
        text.truncate(max(1, width), overflow="ellipsis")
        return text


def node_label(node: "Node", previous: "Node | None", flagged: bool = False) -> Text:
    """The full label (no width limit)."""
    return NodeLabel(node, previous, flagged).full()


def _fit_words(head: Text, words: Text, width: int) -> Text:
    """`head` whole if it fits, then as much of `words` as fits (words are cut, names not)."""
    text = head + words
    if text.cell_len > width:
        text.truncate(max(head.cell_len, width), overflow="ellipsis")
    return text


def ref_label(name: str, width: int | None = None) -> Text:
    head = Text("↪ ", style="dim") + Text(name, style="bold")
    words = Text("  shared: shown in full above", style="dim italic")
    return head + words if width is None else _fit_words(head, words, width)


def gap_label(hidden: int, first: str, last: str, page: int, width: int | None = None) -> Text:
    """`… 493 more steps (enter: open 50)  h248 … h2`"""
    hint = f"enter: open {page}" if hidden > page else "enter: open"
    head = Text(f"… {hidden} more step{'s' if hidden != 1 else ''}", style="italic")
    words = Text(f" ({hint})", style="italic")
    names = Text(f"  {first} … {last}" if hidden > 1 else f"  {first}", style="dim")
    if width is None or head.cell_len + words.cell_len + names.cell_len <= width:
        return head + words + names
    return _fit_words(head, words, width)  # the names go whole: they are in the rows around


def heading_label(words: str, width: int | None = None) -> Text:
    text = Text(words, style="dim italic")
    if width is not None and text.cell_len > width:
        text.truncate(max(1, width), overflow="ellipsis")
    return text


def autograd_label(fn: "AutogradFn", repeated: bool) -> Text:
    """A grad_fn row, whole: the grad_fn view scrolls sideways rather than cut a name."""
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


def autograd_root_label(output: str, has_chain: bool, reason: str | None = None) -> Text:
    if not has_chain:
        return Text(f"{output} has no grad_fn: {reason}, so autograd recorded nothing")
    return Text.assemble((f"{output}.grad_fn", "bold"), ("  backward() walks from here", "dim"))
