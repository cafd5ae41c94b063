"""Command line: the explorer, and the same engine without it (presets, show, check)."""

from __future__ import annotations

import argparse
import io
import re
import sys
from pathlib import Path

USAGE = """\
backprop-tui [PRESET]                 open the explorer (default: scalar_chain)
backprop-tui presets                  list the bundled presets
backprop-tui show PRESET [--set NAME=VALUE | --set 'NAME[i,j]=VALUE']...
                         [--steps N] [--lr LR] [--format text|json|markdown|dot]
backprop-tui check FILE...            validate preset files (exit 1 on any problem)

PRESET is a bundled preset's name or a path to a .toml file."""

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
FORMATS = ("text", "json", "markdown", "dot")
_SET = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(?:\[\s*([0-9,\s]*)\s*\])?\s*=(.*)$", re.S)


class UsageError(Exception):
    """A bad command line: exit 2."""


def main(argv: list[str] | None = None) -> int:
    from backprop_tui.process import quiet_warnings, torch_threads

    with quiet_warnings(), torch_threads(1):
        return _main(sys.argv[1:] if argv is None else argv)


def _main(argv: list[str]) -> int:
    try:
        if argv and argv[0] in ("-h", "--help", "help"):
            print(USAGE)
            return EXIT_OK
        if argv and argv[0] == "presets":
            return cmd_presets(argv[1:])
        if argv and argv[0] == "show":
            return cmd_show(argv[1:])
        if argv and argv[0] == "check":
            return cmd_check(argv[1:])
        if len(argv) > 1 or (argv and argv[0].startswith("-")):
            raise UsageError(f"unknown arguments: {' '.join(argv)}\n\n{USAGE}")
        from backprop_tui.ui.app import run_app

        return run_app(argv[0] if argv else "scalar_chain")
    except UsageError as exc:
        print(f"backprop-tui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def cmd_presets(argv: list[str]) -> int:
    if argv:
        raise UsageError("'presets' takes no arguments")
    from backprop_tui.engine import BackpropError, bundled_presets, load_preset

    for name, path in bundled_presets().items():
        try:
            title = load_preset(path).title
        except BackpropError as exc:
            title = f"(invalid: {exc})"
        print(f"{name:<24} {title}")
    return EXIT_OK


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would exit 2 itself; keep one error path
        raise UsageError(message)


def cmd_show(argv: list[str]) -> int:
    parser = _Parser(prog="backprop-tui show", add_help=False)
    parser.add_argument("preset")
    parser.add_argument("--set", action="append", default=[], dest="sets")
    parser.add_argument("--steps", type=int, default=0)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--format", choices=FORMATS, default="text")
    args = parser.parse_args(argv)
    if not 0 <= args.steps <= 100_000:
        raise UsageError("--steps must be between 0 and 100000")

    from backprop_tui.engine import BackpropError, EditError, Session, load_preset, resolve_preset
    from backprop_tui.engine.numbers import parse_number
    from backprop_tui.engine.preset import printable

    try:
        session = Session(load_preset(resolve_preset(args.preset)))
    except BackpropError as exc:
        print(f"error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_INVALID
    try:
        for assignment in args.sets:
            name, index, text = _parse_set(assignment)
            tensor = session.values.get(name)
            integer = tensor is not None and not tensor.is_floating_point()
            session.set_element(name, index, parse_number(text, integer=integer))
        if args.lr is not None:
            session.set_learning_rate(args.lr)
    except EditError as exc:
        raise UsageError(f"--set: {exc}") from None
    try:
        for _ in range(args.steps):
            session.step()
    except BackpropError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(render(session, args.format), end="")
    return EXIT_OK


def _parse_set(text: str) -> tuple[str, tuple[int, ...], str]:
    match = _SET.match(text)
    if not match:
        raise UsageError(f"--set {text!r}: write NAME=VALUE or 'NAME[i,j]=VALUE'")
    name, index_text, value = match.groups()
    index: tuple[int, ...] = ()
    if index_text is not None and index_text.strip():
        try:
            index = tuple(int(part) for part in index_text.split(","))
        except ValueError:
            raise UsageError(f"--set {text!r}: indices must be whole numbers, e.g. W[0,1]") from None
    return name, index, value


def render(session, fmt_name: str) -> str:
    from backprop_tui.engine import export

    snapshot, history = session.snapshot, session.loss_history
    if fmt_name == "json":
        return export.to_json(snapshot, history) + "\n"
    if fmt_name == "markdown":
        return export.to_markdown(snapshot, history)
    if fmt_name == "dot":
        return export.to_dot(snapshot)
    return _text_table(session)


def _text_table(session) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from backprop_tui.engine.format import format_array, format_shape

    snapshot = session.snapshot
    table = Table(title=snapshot.title, title_justify="left")
    for column in ("node", "kind", "expression", "shape", "value", "grad"):
        table.add_column(column, overflow="fold")
    for n in snapshot.nodes:
        grad = Text("no grad", style="dim") if n.grad is None else Text(format_array(n.grad))
        table.add_row(Text(n.name), n.kind, Text(n.expr), format_shape(n.shape), Text(format_array(n.value)), grad)
    console = Console(width=120, record=True, file=io.StringIO(), color_system=None)
    console.print(table)
    history = session.loss_history
    footer = f"{snapshot.output} = {format_array(snapshot.node(snapshot.output).value)}"
    if len(history) > 1:
        footer += f" after {len(history) - 1} SGD step(s); loss history: " + ", ".join(f"{x:.6g}" for x in history)
    console.print(footer)
    for warning in snapshot.warnings:
        console.print(f"warning: {warning}")
    return console.export_text()


def cmd_check(argv: list[str]) -> int:
    if not argv:
        raise UsageError("'check' needs at least one FILE")
    from backprop_tui.engine import BackpropError, Session, load_preset
    from backprop_tui.engine.preset import printable

    status = EXIT_OK
    for path in argv:
        try:
            preset = load_preset(path)
        except BackpropError as exc:
            print(printable(str(exc)))
            status = EXIT_INVALID
            continue
        try:
            Session(preset)  # a file that loads must also compute: bce of 1.5 fails only in torch
        except BackpropError as exc:
            print(printable(f"{Path(path).name}: cannot compute the initial values: {exc}"))
            status = EXIT_INVALID
            continue
        print(printable(f"{path}: ok"))
    return status
