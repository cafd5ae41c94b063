"""Command line: the explorer, and the same engine without it (presets, show, check), and serve.

Every error is one line on stderr, `backprop-tui: ARGUMENT: what is wrong`, naming the
argument at fault; exit 2 for a bad command line, 1 for a preset that cannot be used.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import re
import shutil
import sys
from pathlib import Path

from backprop_tui import __version__

USAGE = """\
usage: backprop-tui [PRESET] | COMMAND [ARGS...]

  backprop-tui [PRESET]     open the explorer (default: scalar_chain);
                            --no-autosave: keep no autosave (see README)
  backprop-tui PRESET --exercise  derive every gradient by hand, checked
  backprop-tui presets      list the bundled presets
  backprop-tui show PRESET  print every node's value and grad (text, json, ...)
  backprop-tui check PRESET...  validate preset files or bundled presets
  backprop-tui exercise PRESET [--answers FILE]  check hand-derived gradients
  backprop-tui serve [PRESET]   serve the explorer to web browsers, one per tab

PRESET is a bundled preset's name or a path to a .toml file.
`backprop-tui COMMAND --help` shows a command's options; --version its version."""

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
FORMATS = ("text", "json", "markdown", "dot")
NO_AUTOSAVE = "--no-autosave"
MAX_STEPS = 100_000
_SET = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(?:\[\s*([0-9,\s]*)\s*\])?\s*=(.*)$", re.S)


class CliError(Exception):
    """One line for stderr, naming the argument at fault, and the exit code."""

    def __init__(self, argument: str, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(f"{argument}: {message}" if argument else message)
        self.code = code


class _Done(Exception):
    """argparse finished on its own (--help): exit with this code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _Parser(argparse.ArgumentParser):
    """argparse that reports through CliError instead of exiting the interpreter."""

    def error(self, message: str):
        # argparse says "argument --steps: invalid int value: 'two'": keep the argument first
        match = re.match(r"argument (\S+?)(?:/\S+)?: (.*)$", message, re.S)
        if match:
            raise CliError(match.group(1), match.group(2))
        match = re.match(r"unrecognized arguments: (.*)$", message, re.S)
        if match:
            raise CliError(match.group(1), f"unrecognized argument(s) (see {self.prog} --help)")
        match = re.match(r"the following arguments are required: (.*)$", message, re.S)
        if match:
            raise CliError(match.group(1), f"required (see {self.prog} --help)")
        raise CliError("", message)

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            print(message, file=sys.stderr, end="")
        raise _Done(status)


def main(argv: list[str] | None = None) -> int:
    from backprop_tui.process import quiet_warnings, torch_threads

    with quiet_warnings(), torch_threads(1):
        return _main(sys.argv[1:] if argv is None else argv)


def _main(argv: list[str]) -> int:
    try:
        return _dispatch(argv)
    except CliError as exc:
        print(f"backprop-tui: {_one_line(str(exc))}", file=sys.stderr)
        return exc.code
    except _Done as done:
        return done.code
    except KeyboardInterrupt:
        return 130


def _dispatch(argv: list[str]) -> int:
    first = argv[0] if argv else None
    if first in ("-h", "--help", "help"):
        print(USAGE)
        return EXIT_OK
    if first in ("-V", "--version"):
        print(f"backprop-tui {__version__}")
        return EXIT_OK
    commands = {"presets": cmd_presets, "show": cmd_show, "check": cmd_check, "exercise": cmd_exercise,
                "serve": cmd_serve}
    if first in commands:
        return commands[first](argv[1:])
    autosave = None if NO_AUTOSAVE not in argv else False
    exercise = "--exercise" in argv[1:]
    rest = [a for a in argv[1:] if a not in ("--exercise", NO_AUTOSAVE)]
    if first == NO_AUTOSAVE:
        first = rest.pop(0) if rest else None
    if first is not None and first.startswith("-"):
        raise CliError(first, "unknown option (backprop-tui --help lists the commands)")
    if rest:
        raise CliError(rest[0], f"unexpected after PRESET {first!r} (backprop-tui --help lists the commands)")
    from backprop_tui.ui.app import run_app

    return run_app(first or "scalar_chain", exercise=exercise, autosave=autosave)


def _short(exc: BaseException, width: int = 200) -> str:
    """The first line of an unexpected exception's text, cut to `width` characters."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    return text if len(text) <= width else text[: width - 1] + "…"


def _one_line(text: str) -> str:
    from backprop_tui.engine.preset import printable

    return printable(" ".join(text.split()))


# ---------------------------------------------------------------- presets


def cmd_presets(argv: list[str]) -> int:
    parser = _Parser(prog="backprop-tui presets", description="List the bundled presets with their titles.")
    parser.parse_args(argv)
    from backprop_tui.engine import BackpropError, bundled_presets, load_preset

    for name, path in bundled_presets().items():
        try:
            title = load_preset(path).title
        except BackpropError as exc:
            title = f"(invalid: {exc})"
        print(f"{name:<24} {title}")
    return EXIT_OK


# ---------------------------------------------------------------- show


def cmd_show(argv: list[str]) -> int:
    parser = _Parser(
        prog="backprop-tui show",
        description="Run a preset forward and backward and print every node's value and grad.",
        epilog="JSON is strict (RFC 8259): a NaN or infinity is written as the string "
               '"NaN", "Infinity" or "-Infinity", and "nonfinite" is true.',
    )
    parser.add_argument("preset", metavar="PRESET", help="a bundled preset's name or a .toml file")
    parser.add_argument("--set", action="append", default=[], dest="sets", metavar="NAME=VALUE",
                        help="set a leaf before computing: w=2 or 'W[0,1]=0.5' (repeatable)")
    parser.add_argument("--steps", type=int, default=0, metavar="N",
                        help=f"take N SGD steps first (0..{MAX_STEPS}); stops if the loss becomes non-finite")
    parser.add_argument("--lr", type=float, default=None, metavar="LR", help="learning rate of the SGD steps")
    parser.add_argument("--format", choices=FORMATS, default="text", help="text (default), json, markdown or dot")
    args = parser.parse_args(argv)
    if not 0 <= args.steps <= MAX_STEPS:
        raise CliError("--steps", f"must be between 0 and {MAX_STEPS}, got {args.steps}")

    from backprop_tui.engine import EditError

    session = _open_session(args.preset)
    for assignment in args.sets:
        name, index, text = _parse_set(assignment)
        try:
            from backprop_tui.engine.numbers import parse_number

            tensor = session.values.get(name)
            integer = tensor is not None and not tensor.is_floating_point()
            session.set_element(name, index, parse_number(text, integer=integer))
        except EditError as exc:
            raise CliError(f"--set {assignment.strip()!r}", str(exc)) from None
    if args.lr is not None:
        try:
            session.set_learning_rate(args.lr)
        except EditError as exc:
            raise CliError(f"--lr {args.lr:g}", str(exc)) from None
    stopped = _take_steps(session, args.steps)
    print(render(session, args.format), end="")
    if stopped is not None:
        print(f"backprop-tui: --steps {args.steps}: the loss became {stopped[1]} at step {stopped[0]}; "
              "stopped there", file=sys.stderr)
    return EXIT_OK


def _open_session(spec: str):
    from backprop_tui.engine import BackpropError, Session, load_preset, resolve_preset

    try:
        preset = load_preset(resolve_preset(spec))
    except BackpropError as exc:
        raise CliError("PRESET", str(exc), EXIT_INVALID) from None
    try:
        return Session(preset)
    except BackpropError as exc:  # as check words it: the file, then what torch refused
        name = Path(preset.source).name
        raise CliError("PRESET", f"{name}: cannot compute the initial values: {exc}", EXIT_INVALID) from None


def _take_steps(session, steps: int) -> tuple[int, str] | None:
    """Take SGD steps; stop at the first non-finite loss and return (step, what it became)."""
    from backprop_tui.engine import BackpropError

    for number in range(1, steps + 1):
        try:
            session.step()
        except BackpropError as exc:
            raise CliError(f"--steps {steps}", f"step {number}: {exc}", EXIT_INVALID) from None
        loss = session.snapshot.loss
        if not math.isfinite(loss):
            return number, _number(loss)
    return None


def _parse_set(text: str) -> tuple[str, tuple[int, ...], str]:
    match = _SET.match(text)
    if not match:
        raise CliError(f"--set {text!r}", "write NAME=VALUE or 'NAME[i,j]=VALUE'")
    name, index_text, value = match.groups()
    index: tuple[int, ...] = ()
    if index_text is not None and index_text.strip():
        try:
            index = tuple(int(part) for part in index_text.split(","))
        except ValueError:
            raise CliError(f"--set {text!r}", "indices must be whole numbers, e.g. W[0,1]") from None
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
    return text_table(session, shutil.get_terminal_size((80, 24)).columns)


def _number(value: float) -> str:
    from backprop_tui.engine.numbers import fmt

    return fmt(value)


def matrix_text(array) -> str:
    """A matrix one row a line, so a narrow column wraps between rows, never inside a number."""
    from backprop_tui.engine.format import format_array

    if array is None or array.ndim != 2:
        return format_array(array)
    rows = [format_array(row) for row in array[:6]]
    if array.shape[0] > 6:
        rows.append("…")
    return "[" + ",\n ".join(rows) + "]"


def loss_summary(history: list[float]) -> str:
    """first, last, min (at which step), and where the loss stopped being finite."""
    steps = len(history) - 1
    finite = [(x, i) for i, x in enumerate(history) if math.isfinite(x)]
    parts = [f"first {_number(history[0])}", f"last {_number(history[-1])}"]
    if finite:
        low, at = min(finite)
        parts.append(f"min {_number(low)} (step {at})")
    bad = next((i for i, x in enumerate(history) if not math.isfinite(x)), None)
    if bad is not None:
        parts.append(f"non-finite from step {bad}")
    return f"loss over {steps} SGD step(s): " + ", ".join(parts)


def text_table(session, width: int) -> str:
    """Every node as a table row when the table fits `width` without breaking a number,
    else as a block of lines (name, kind, shape; then value and grad a matrix row a line)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from backprop_tui.engine.format import format_array, format_shape

    snapshot = session.snapshot
    width = max(width, 40)
    table = Table(title=snapshot.title, title_justify="left")
    for column in ("node", "kind", "expression", "shape", "value", "grad"):
        table.add_column(column, overflow="fold")
    rows = [(n.name, n.kind, n.expr, format_shape(n.shape), matrix_text(n.value),
             "no grad" if n.grad is None else matrix_text(n.grad)) for n in snapshot.nodes]
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    # the narrowest table that breaks no word and no matrix row: plus 3 a column for borders and padding
    columns = list(zip(("node", "kind", "expression", "shape", "value", "grad"), *rows))
    narrowest = 1 + sum(3 + max(len(word) for cell in column for word in (cell.split() or [""]))
                        for column in columns[:4])
    narrowest += sum(3 + max(len(line) for cell in column for line in cell.split("\n")) for column in columns[4:])
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    if narrowest <= width:
        console.print(table)
    else:
        console.print(Text(snapshot.title))
        for n in snapshot.nodes:
            console.print(Text("\n".join(node_block(n, width))))
    history = session.loss_history
    console.print(Text(f"{snapshot.output} = {format_array(snapshot.node(snapshot.output).value)}"))
    if len(history) > 1:
        console.print(Text(loss_summary(history) + " (--format json has every value)"))
    for warning in snapshot.warnings:
        console.print(Text(f"warning: {warning}"))
    return "".join(line.rstrip() + "\n" for line in console.export_text().splitlines())


def node_block(node, width: int) -> list[str]:
    """A node in lines of at most `width` columns; a long matrix row wraps after a comma."""
    import textwrap

    from backprop_tui.engine.format import format_shape

    head = f"{node.name} = {node.expr}" if node.expr else node.name
    lines = textwrap.wrap(f"{head}   ({node.kind}, {format_shape(node.shape)})", width,
                          subsequent_indent="    ", break_on_hyphens=False) or [head]
    for label, array in (("value", node.value), ("grad ", node.grad)):
        text = "no grad" if array is None else matrix_text(array)
        lead = f"  {label} "
        for i, row in enumerate(text.split("\n")):
            first = lead if i == 0 else " " * len(lead)
            lines += textwrap.wrap(row, width, initial_indent=first, subsequent_indent=" " * (len(lead) + 2),
                                   break_on_hyphens=False)
    return lines


# ---------------------------------------------------------------- check


def cmd_check(argv: list[str]) -> int:
    parser = _Parser(
        prog="backprop-tui check",
        description="Validate preset files (or bundled presets): one line each, exit 1 on any problem.",
    )
    parser.add_argument("presets", nargs="+", metavar="PRESET", help="a .toml file or a bundled preset's name")
    args = parser.parse_args(argv)
    from backprop_tui.engine import BackpropError, Session, bundled_presets, load_preset
    from backprop_tui.engine.files import FileRefused, expand
    from backprop_tui.engine.preset import printable

    bundled = bundled_presets()
    status = EXIT_OK
    for spec in args.presets:
        try:
            path = bundled[spec] if spec in bundled and not os.path.lexists(spec) else expand(spec)
            preset = load_preset(path)
        except FileRefused as exc:  # a path that cannot be expanded: ~nosuchuser/x.toml
            print(printable(f"{spec}: {exc}"))
            status = EXIT_INVALID
            continue
        except BackpropError as exc:
            print(printable(str(exc)))
            status = EXIT_INVALID
            continue
        except Exception as exc:  # a bug, not the file's fault: still one line, and the next file is checked
            print(_one_line(f"{Path(spec).name}: cannot check: {type(exc).__name__}: {_short(exc)}"))
            status = EXIT_INVALID
            continue
        try:
            Session(preset)  # a file that loads must also compute: bce of 1.5 fails only in torch
        except BackpropError as exc:
            print(printable(f"{Path(preset.source).name}: cannot compute the initial values: {exc}"))
            status = EXIT_INVALID
            continue
        except Exception as exc:
            print(_one_line(f"{Path(preset.source).name}: cannot compute the initial values: "
                            f"{type(exc).__name__}: {_short(exc)}"))
            status = EXIT_INVALID
            continue
        print(printable(f"{spec}: ok"))
    return status


# ---------------------------------------------------------------- exercise


def cmd_exercise(argv: list[str]) -> int:
    parser = _Parser(
        prog="backprop-tui exercise",
        description="Check a file of hand-derived gradients against autograd, one makemore cmp line per "
                    "answer with the diagnosis, then a summary. Exit 0 only when every gradient of the "
                    "exercise is answered at least approximately.",
        epilog='The file holds one line per gradient, in any order: dlogprobs = "-one_hot(Yb, 27) / 32"; '
               "an answer may use the forward values by name and other answers as d + name.",
    )
    parser.add_argument("preset", metavar="PRESET", help="a bundled preset's name or a .toml file")
    parser.add_argument("--answers", metavar="FILE",
                        help="the answer file (TOML); without it, the preset's own [answers] (a saved exercise)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or json")
    args = parser.parse_args(argv)
    from backprop_tui.engine.exercise import AnswerError, Exercise
    from backprop_tui.engine.exercise.grading import (
        answers_from, answers_table, extras_from, grade, read_answer_file,
    )
    from backprop_tui.engine.preset import printable

    session = _open_session(args.preset)
    exercise = Exercise(session.preset, session.snapshot)
    try:
        if args.answers is None:
            if not session.preset.answers:
                message = f"{args.preset} holds no [answers] table: give an answer file with --answers FILE"
                raise CliError("--answers", message, EXIT_USAGE)
            doc = answers_table(session.preset.answers, exercise.extras)
        else:
            doc = read_answer_file(args.answers)
        answers = answers_from(doc, exercise, source=args.answers or args.preset)
        extras = extras_from(doc, exercise, source=args.answers or args.preset)
    except AnswerError as exc:
        raise CliError("--answers", str(exc), EXIT_INVALID) from None
    report = grade(exercise, answers, extras)
    if args.format == "json":
        import json

        print(json.dumps(report.to_json(), indent=2))
    else:
        for verdict in report.verdicts:
            print(printable(verdict.line()))
        for node in report.missing:
            print(f"{'d' + node:15s} | missing")
        print(report.summary())
    return EXIT_OK if report.passed else EXIT_INVALID


# ---------------------------------------------------------------- serve


def cmd_serve(argv: list[str]) -> int:
    from backprop_tui.serve.server import DEFAULT_MAX_SESSIONS, IDLE_SECONDS

    parser = _Parser(
        prog="backprop-tui serve",
        description="Serve the explorer to web browsers (textual-serve): every tab is its own explorer "
                    "with its own undo. Served sessions open, save and autosave no files unless --dir "
                    "names a directory they are confined to; export offers a download.",
    )
    parser.add_argument("preset", nargs="?", default="scalar_chain", metavar="PRESET",
                        help="the preset every tab opens (default: scalar_chain)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    parser.add_argument("--max-sessions", type=int, default=DEFAULT_MAX_SESSIONS, metavar="N",
                        help=f"tabs served at once; the next one gets a 'full' page (default: {DEFAULT_MAX_SESSIONS})")
    parser.add_argument("--public-url", default=None, metavar="URL",
                        help="the URL students type, when it differs from http://HOST:PORT (a proxy)")
    parser.add_argument("--dir", default=None, metavar="DIR",
                        help="let sessions open, save and export files inside DIR only")
    parser.add_argument("--idle-minutes", type=float, default=IDLE_SECONDS / 60, metavar="M",
                        help=f"end a session after M minutes without a key (default: {IDLE_SECONDS // 60})")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        raise CliError("--port", f"must be between 1 and 65535, got {args.port}")
    if not 1 <= args.max_sessions <= 1000:
        raise CliError("--max-sessions", f"must be between 1 and 1000, got {args.max_sessions}")
    if not (math.isfinite(args.idle_minutes) and args.idle_minutes > 0):
        raise CliError("--idle-minutes", f"must be a positive number, got {args.idle_minutes}")
    if args.public_url is not None and not re.match(r"^https?://[^\s/]+", args.public_url):
        raise CliError("--public-url", f"must start with http:// or https://, got {args.public_url!r}")
    directory = None
    if args.dir is not None:
        directory = Path(args.dir).expanduser()
        if not directory.is_dir():
            raise CliError(f"--dir {args.dir!r}", "not a directory")
        directory = directory.resolve()
    from backprop_tui.engine import BackpropError, load_preset, resolve_preset

    try:
        preset_path = resolve_preset(args.preset)
        load_preset(preset_path)
    except BackpropError as exc:
        raise CliError("PRESET", str(exc), EXIT_INVALID) from None
    from backprop_tui.serve.server import serve

    spec = args.preset if Path(args.preset).name == args.preset and not Path(args.preset).is_file() \
        else str(preset_path.resolve())
    return serve(spec, host=args.host, port=args.port, max_sessions=args.max_sessions,
                 public_url=args.public_url, directory=directory, idle_seconds=args.idle_minutes * 60)
