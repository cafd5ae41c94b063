"""`f`: finite differences beside autograd, element by element (engine.analysis.gradcheck).

Page 1 checks every leaf that requires grad together (at most gradcheck.MAX_ELEMENTS
elements, evenly spaced in big tensors); when that is not all of them, further pages
check one leaf each, again up to the cap. The check runs in a thread worker on a
FrozenState taken when the screen opened; rows are the engine's numbers, formatted.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Footer, Static

from backprop_tui.ui.screens.dialog import Dialog

STATUS_STYLE = {"ok": "green", "mismatch": "bold red", "kink": "bold yellow", "nonfinite": "bold red"}
STATUS_WORD = {"ok": "ok", "mismatch": "MISMATCH", "kink": "kink ⚠", "nonfinite": "nan/inf"}
COLUMNS = (("element", "element"), ("value", "value"), ("autograd", "autograd"),
           ("numeric", "finite diff"), ("abs", "abs diff"), ("rel", "rel diff"), ("status", "status"))


@dataclass(frozen=True)
class Page:
    title: str
    leaves: tuple[str, ...] | None  # None: every leaf with a grad


def pages_for(state) -> list[Page]:
    """Page 1: all leaves together; one more page per leaf when the cap leaves some out."""
    from backprop_tui.engine.analysis.gradcheck import MAX_ELEMENTS

    leaves = [n for n, v in state.values.items() if state.requires_grad.get(n) and v.is_floating_point()]
    pages = [Page("every leaf that requires grad", None)]
    if sum(state.values[n].numel() for n in leaves) > MAX_ELEMENTS:
        pages += [Page(f"leaf {n} only", (n,)) for n in leaves]
    return pages


class GradcheckScreen(Dialog[None]):
    BINDINGS = [
        Binding("escape", "close", "Close", id="gradcheck.close", tooltip="Back to the explorer."),
        Binding("less_than_sign", "page(-1)", "Prev page", id="gradcheck.page_prev",
                tooltip="The previous page (all leaves, then one leaf per page in big presets)."),
        Binding("greater_than_sign", "page(1)", "Next page", id="gradcheck.page_next",
                tooltip="The next page (all leaves, then one leaf per page in big presets)."),
    ]

    DEFAULT_CSS = """
    GradcheckScreen #gc-box {
        width: 96%;
        height: 92%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    GradcheckScreen #gc-table { height: 1fr; }
    GradcheckScreen #gc-summary, GradcheckScreen #gc-reason { height: auto; }
    """

    class Checked(Message):
        def __init__(self, page: int, result: object) -> None:
            super().__init__()
            self.page = page
            self.result = result

    def __init__(self, state, output: str) -> None:
        super().__init__()
        self.state = state
        self.output = output
        self.pages = pages_for(state)
        self.page = 0
        self.result = None

    def compose(self):
        with Vertical(id="gc-box"):
            yield Static(Text.assemble(("Finite differences", "bold"),
                                       ("  autograd's grad beside (f(x+h) − f(x−h)) / 2h, in float64; "
                                        "a kink (ReLU at 0) is flagged, not a failure", "dim")),
                         id="gc-title")
            yield Static(id="gc-page")
            yield Static(id="gc-summary")
            yield DataTable(id="gc-table", cursor_type="row", zebra_stripes=True)
            yield Static(id="gc-reason")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        table.focus()
        self._start()

    def _start(self) -> None:
        page = self.pages[self.page]
        more = f"   page {self.page + 1} of {len(self.pages)}  (< >)" if len(self.pages) > 1 else ""
        self.query_one("#gc-page", Static).update(Text.assemble(("checking ", "dim"), page.title, (more, "dim")))
        self.query_one("#gc-summary", Static).update(Text("computing…", style="dim italic"))
        self.query_one("#gc-reason", Static).update("")
        self.query_one(DataTable).clear()
        self._check(self.page, page.leaves)

    @work(thread=True, exclusive=True, group="gradcheck", description="finite differences")
    def _check(self, page: int, leaves: tuple[str, ...] | None) -> None:
        from backprop_tui.engine import BackpropError
        from backprop_tui.engine.analysis.gradcheck import gradcheck

        try:
            result: object = gradcheck(self.state, leaves)
        except BackpropError as exc:
            result = str(exc)
        except Exception as exc:  # noqa: BLE001 - say what failed instead of stopping the app
            result = f"finite differences unavailable ({type(exc).__name__}: {exc})"
        self.post_message(self.Checked(page, result))

    def on_gradcheck_screen_checked(self, message: Checked) -> None:
        from backprop_tui.ui.format import fmt

        if message.page != self.page:
            return
        summary = self.query_one("#gc-summary", Static)
        if isinstance(message.result, str):
            summary.update(Text(message.result, style="bold red"))
            return
        result = self.result = message.result
        if not result.passed:
            verdict_style = STATUS_STYLE["mismatch"]
        else:
            verdict_style = STATUS_STYLE["kink" if result.count("kink") else "ok"]
        summary.update(
            Text.assemble(
                (result.summary, "bold"),
                (f"   {result.verdict}", verdict_style),
                (f"   h = {fmt(result.step)}·max(1, |x|)", "dim"),
            )
        )
        table = self.query_one(DataTable)
        rows = [
            (
                Text(e.label),
                Text(fmt(e.value), justify="right"),
                Text(fmt(e.autograd), justify="right"),
                Text(fmt(e.numeric, 9), justify="right"),
                Text(fmt(e.abs_diff, 3), justify="right"),
                Text(fmt(e.rel_diff, 3), justify="right"),
                Text(STATUS_WORD[e.status], style=STATUS_STYLE[e.status]),
            )
            for e in result.elements
        ]
        with self.app.batch_update():
            # columns as wide as their widest cell from the start: a table that widens them
            # after the rows are in may keep the cursor row's narrower first drawing
            table.clear(columns=True)
            for column, (key, label) in enumerate(COLUMNS):
                width = max([len(label), *(row[column].cell_len for row in rows)])
                table.add_column(label, key=key, width=width)
            for i, row in enumerate(rows):
                table.add_row(*row, key=str(i))
        if result.elements:
            self._show_reason(0)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_reason(event.cursor_row)

    def _show_reason(self, row: int) -> None:
        if self.result is None or not 0 <= row < len(self.result.elements):
            return
        element = self.result.elements[row]
        self.query_one("#gc-reason", Static).update(Text(element.reason, style=STATUS_STYLE[element.status]))

    def action_page(self, direction: int) -> None:
        if len(self.pages) < 2:
            return
        self.page = (self.page + direction) % len(self.pages)
        self.result = None
        self._start()

    def action_close(self) -> None:
        self.dismiss(None)
