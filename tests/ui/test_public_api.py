"""Textual, Rich and plotext are used through their public API only.

A private name can change in any release without notice, and a wrong cell on screen is
not an error: so no module of backprop_tui imports from a `_`-module of those libraries,
reads a `_`-attribute of one of their objects, or defines in a subclass of their classes
an attribute or method that shadows one of their private ones.

Read from the source (ast): every `x._name` whose `_name` the project does not define
itself is someone else's private attribute; in a class derived from a library class,
`self._name` and `def _name` must not be one of that library class's private names.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from functools import cache
from pathlib import Path

import pytest

import backprop_tui

LIBRARIES = ("textual", "rich", "plotext", "textual_plotext")
PACKAGE = Path(backprop_tui.__file__).parent
SOURCES = sorted(PACKAGE.rglob("*.py"))
# The engine imports neither textual nor rich (the import-linter contract in pyproject);
# its `_`-attributes are torch's and its own.
CHECKED = [path for path in SOURCES if path.relative_to(PACKAGE).parts[0] != "engine"]
# Being rewritten on the public line API; an expected failure only until that lands.
BEING_REWRITTEN: set[str] = set()


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _from_library(module: str | None) -> bool:
    return module is not None and module.split(".")[0] in LIBRARIES


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@cache
def project_names() -> frozenset[str]:
    """Every `_`-name the project itself defines: functions, classes, names, attributes set on self."""
    names = set()
    for path in SOURCES:
        for node in ast.walk(_tree(path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                  and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                names.add(node.attr)  # set on its own object; `widget._x = ...` defines nothing
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.alias):
                names.add(node.asname or node.name.split(".")[0])
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return frozenset(name for name in names if _private(name))


@cache
def library_private_names(cls: type) -> frozenset[str]:
    """The `_`-names a library class and its library bases define or set on self."""
    names = set()
    for base in cls.__mro__:
        if not _from_library(base.__module__):
            continue
        names.update(name for name in vars(base) if _private(name))
        try:
            source = inspect.getsource(base)
        except (OSError, TypeError):
            continue
        for node in ast.walk(ast.parse(inspect.cleandoc("\n" + source) if source[0].isspace() else source)):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
                if _private(node.attr):
                    names.add(node.attr)
    return frozenset(names)


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    return ".".join(relative.parts).removesuffix(".__init__")


def problems(path: Path) -> list[str]:
    tree = _tree(path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _from_library(node.module):
            if any(_private(part) for part in node.module.split(".")):
                found.append(f"{node.lineno}: from {node.module} import")
            found.extend(f"{node.lineno}: import {alias.name} from {node.module}"
                         for alias in node.names if _private(alias.name))
        elif isinstance(node, ast.Import):
            found.extend(f"{node.lineno}: import {alias.name}" for alias in node.names
                         if _from_library(alias.name) and any(_private(p) for p in alias.name.split(".")))
        elif isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in project_names():
            found.append(f"{node.lineno}: .{node.attr}")
    classes = [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    if classes:
        module = importlib.import_module(_module_name(path))
        for node in classes:
            cls = getattr(module, node.name, None)
            if not isinstance(cls, type):
                continue
            theirs = library_private_names(cls)
            for inner in ast.walk(node):
                if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef)) and inner.name in theirs:
                    found.append(
                        f"{inner.lineno}: {node.name} defines {inner.name}, private in {cls.__mro__[1].__name__}"
                    )
                elif (isinstance(inner, ast.Attribute) and isinstance(inner.value, ast.Name)
                      and inner.value.id == "self" and inner.attr in theirs):
                    found.append(f"{inner.lineno}: {node.name} uses self.{inner.attr}, private in a library base")
    return sorted(set(found), key=lambda line: int(line.split(":")[0]))


def _params():
    for path in CHECKED:
        relative = path.relative_to(PACKAGE).as_posix()
        marks = (
            [pytest.mark.xfail(reason="being rewritten on the public line API")] if relative in BEING_REWRITTEN else []
        )
        yield pytest.param(path, id=relative, marks=marks)


@pytest.mark.parametrize("path", _params())
def test_no_private_names_of_textual_rich_or_plotext(path):
    assert problems(path) == []


def test_the_check_finds_private_names(tmp_path):
    """The check itself: each kind of private use in a small module is found."""
    source = tmp_path / "sample.py"
    source.write_text(
        "from textual._compositor import Compositor\n"
        "from rich._wrap import divide_line\n"
        "import rich._loop\n"
        "def f(widget, plt):\n"
        "    widget._repaint_required = False\n"
        "    plt._set_size(1, 2)\n",
        encoding="utf-8",
    )
    found = problems(source)
    assert [line.split(":")[0] for line in found] == ["1", "2", "3", "5", "6"]


def test_the_check_finds_a_shadowed_private_of_a_library_base():
    from textual.widgets import Tree

    assert "_render_line" in library_private_names(Tree)
    assert "_tree_lines_cached" in library_private_names(Tree)
