"""`?`: every binding, read from the Binding objects themselves, and what each panel means."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from backprop_tui.ui.screens.dialog import Dialog

PANELS = [
    ("Header", "The preset's title; the output's name and value; SGD steps taken, learning rate, loss, "
               "and a sparkline of the loss after each step; the last action or error."),
    ("Graph (#graph)", "The computation as a tree rooted at the output. A node's children are its inputs: "
                       "the direction backprop walks. Each line shows name, expression, value and grad. "
                       "A node used twice appears in full once and as ↪ reference elsewhere. "
                       "Key a shows PyTorch's raw grad_fn chain instead (AccumulateGrad at the leaves)."),
    ("Weights (#weights)", "Every leaf (inputs, targets, parameters). ● requires grad, ○ does not: only leaves "
                           "that require grad get a .grad. The grid lists the selected leaf's elements: "
                           "index, value, grad. Enter types a new value; + and - nudge by the step."),
    ("Inspector (#inspector)", "The highlighted node: expression, kind, shape, grad_fn, value and grad as "
                               "aligned matrices, its inputs and consumers, and for a scalar the chain rule "
                               "with the numbers torch computes."),
    ("Signs and changes", "Positive grads are green with +, negative red with -. Numbers changed by the last "
                          "edit are reversed and followed by Δ and how much they moved, until the next edit. "
                          "'no grad' means autograd computed none: it is not 0."),
]


def binding_table(groups: list[tuple[str, list[Binding]]], key_display) -> Table:
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False, expand=True)
    table.add_column("key", no_wrap=True, style="bold cyan")
    table.add_column("what it does", ratio=1)
    table.add_column("id", style="dim", no_wrap=True)
    for title, bindings in groups:
        table.add_row(Text(title, style="bold underline"), "", "")
        merged: dict[str, tuple[list[str], Binding]] = {}
        for binding in Binding.make_bindings(bindings):
            key = binding.id or binding.action
            if key in merged:
                merged[key][0].append(key_display(binding))
            else:
                merged[key] = ([key_display(binding)], binding)
        for keys, binding in merged.values():
            what = binding.description
            if binding.tooltip:
                what = f"{what}: {binding.tooltip}" if what else binding.tooltip
            table.add_row(" / ".join(keys), Text(what), binding.id or "")
    return table


class HelpScreen(Dialog[None]):
    BINDINGS = [
        Binding("escape,question_mark,q", "close", "Close", id="help.close", tooltip="Close the help."),
    ]

    def __init__(self, groups: list[tuple[str, list[Binding]]]) -> None:
        super().__init__()
        self.groups = groups

    def compose(self):
        panels = [Text.assemble((f"{name}\n", "bold"), text, "\n") for name, text in PANELS]
        with Vertical(classes="dialog", id="help-box"):
            yield Static(Text("backprop-tui help  (esc closes)", style="bold"), id="help-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(Group(*panels), id="help-panels")
                yield Static(binding_table(self.groups, self.app.get_key_display), id="help-keys")

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    def action_close(self) -> None:
        self.dismiss(None)
