"""A learner's answer: the gradient of the output with respect to one node, written as an
expression in the preset language.

The text goes through the preset parser (`expr.parse_expression`, an allow-list; never
eval). It may read every forward value by its node's name and every gradient the learner
has had accepted as `d` + the node's name, or `grad(name)` (which also works where
`d` + name is itself a node's name). The gradients are the learner's own answers, never
autograd's, so a mistake upstream is never repaired silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch

from backprop_tui.engine.errors import BackpropError, PresetError
from backprop_tui.engine.expr import ParsedExpr, parse_expression
from backprop_tui.engine.limits import MAX_EXPR_CHARS
from backprop_tui.engine.ops import TorchOps, evaluate_step
from backprop_tui.engine.shapes import CheckOps, check_module_input, stand_in  # the checks every preset step passes

# grad(name) is written into a name the parser accepts and no node can hold ('__' is refused)
_GRAD_CALL = re.compile(r"\bgrad\s*\(\s*([A-Za-z][A-Za-z0-9_]*)\s*\)")
_GRAD_MARK = "grad_of_"


class AnswerError(BackpropError):
    """An answer that cannot be read or computed; nothing was recorded."""


@dataclass(frozen=True)
class Answer:
    """A parsed answer for the gradient of `node`: which values and gradients it reads."""

    node: str
    text: str
    expr: ParsedExpr
    values_used: tuple[str, ...]  # forward values, by node name
    grads_used: tuple[str, ...]  # nodes whose (learner's) gradient it reads
    refs: tuple[tuple[str, str], ...]  # (name in the tree, node whose gradient it stands for)


def parse_answer(
    node: str,
    text: str,
    names: Mapping[str, object],
    gradient_nodes: frozenset[str] | set[str],
    modules: frozenset[str] | set[str] = frozenset(),
    allowed: tuple[str, ...] | None = None,
) -> Answer:
    """Check an answer's text; AnswerError with one line if it cannot be used.

    `names` holds every node name, `gradient_nodes` the nodes that have a gradient,
    `allowed` (an exercise's list) the only names the answer may read.
    """
    if not isinstance(text, str):
        raise AnswerError(f"the answer for d{node} must be text")
    if len(text) > MAX_EXPR_CHARS:
        raise AnswerError(f"the answer for d{node} is {len(text):,} characters long; the limit is {MAX_EXPR_CHARS:,}")
    if any(name.startswith(_GRAD_MARK) for name in names):
        raise AnswerError(f"a node's name starts with {_GRAD_MARK!r}; answers cannot name gradients here")
    marked = _GRAD_CALL.sub(lambda m: _GRAD_MARK + m.group(1), text)
    try:
        parsed = parse_expression(marked, modules)
    except PresetError as exc:
        message = str(exc).replace(_GRAD_MARK, "d")
        if re.search(r"\bgrad\s*\(", marked):
            message = "grad() takes one node's name, e.g. grad(h)"
        raise AnswerError(f"the answer for d{node}: {message}") from None
    values: list[str] = []
    refs: list[tuple[str, str]] = []
    for name in parsed.names:
        if name in names:
            values.append(name)
            continue
        target = name[len(_GRAD_MARK):] if name.startswith(_GRAD_MARK) else name[1:] if name.startswith("d") else None
        if target is None or target not in names:
            shown = f"grad({target})" if name.startswith(_GRAD_MARK) else name
            raise AnswerError(
                f"the answer for d{node}: unknown name {shown!r}; use a node's name for its value, "
                "d + its name (or grad(name)) for its gradient"
            )
        if target not in gradient_nodes:
            raise AnswerError(f"the answer for d{node}: {target} has no gradient (it does not require grad)")
        if target == node:
            raise AnswerError(f"the answer for d{node} uses d{node} itself")
        refs.append((name, target))
    if allowed is not None:
        shown_refs = [f"d{target}" for _, target in refs]
        extra = [n for n in [*values, *shown_refs, *parsed.modules] if n not in allowed]
        if extra:
            raise AnswerError(
                f"the answer for d{node} may use only {', '.join(allowed)}; it uses {', '.join(dict.fromkeys(extra))}"
            )
    return Answer(
        node=node,
        text=text.strip(),
        expr=parsed,
        values_used=tuple(values),
        grads_used=tuple(dict.fromkeys(target for _, target in refs)),
        refs=tuple(refs),
    )


Call = Callable[[str, torch.Tensor], torch.Tensor]


def module_caller(modules: Mapping[str, Any], env: Mapping[str, torch.Tensor], error: type = AnswerError,
                  limit: Callable[[tuple[int, ...]], None] | None = None) -> Call:
    """call_module for TorchOps: a declared module applied through its kind's functional form,
    with the parameters `env` holds (the forward values). `limit` sees the output's shape first."""

    def call(name: str, x: torch.Tensor) -> torch.Tensor:
        spec = modules[name]
        check_module_input(spec, x, error, check_values=limit is None)
        options = dict(spec.options)
        if limit is not None:
            limit(spec.kind.output_shape(options, tuple(x.shape)))
        return spec.kind.functional(options, x, {p: env[f"{name}.{p}"] for p in spec.parameters})

    return call


def evaluate_answer(
    answer: Answer,
    values: Mapping[str, torch.Tensor],
    grads: Mapping[str, torch.Tensor],
    modules: Mapping[str, Any] | None = None,
) -> torch.Tensor:
    """The answer's tensor. `grads` holds the learner's accepted gradients; an answer that
    reads one not there is refused. `modules` are the preset's declared modules, by name.
    Every operation is first run on data-free stand-ins, as a preset's steps are, so no
    answer can make a tensor past the size limit."""
    missing = [target for target in answer.grads_used if target not in grads]
    if missing:
        which = "which has no accepted answer yet" if len(missing) == 1 else "which have no accepted answers yet"
        raise AnswerError(f"the answer for d{answer.node} uses {', '.join('d' + m for m in missing)}, {which}")
    modules = modules or {}
    env = {name: values[name] for name in answer.values_used}
    for name, target in answer.refs:
        env[name] = grads[target]
    for module in answer.expr.modules:
        env.update({f"{module}.{p}": values[f"{module}.{p}"] for p in modules[module].parameters})
    where = f"the answer for d{answer.node}"
    shapes = {name: stand_in(t.shape, t.dtype) for name, t in env.items()}
    checker: CheckOps = CheckOps(shapes, lambda name, x: module_caller(modules, shapes, limit=checker.limit)(name, x),
                                 AnswerError, where)
    evaluate_step(answer.expr.tree, checker)
    result = evaluate_step(answer.expr.tree, TorchOps(env, module_caller(modules, env), AnswerError, where))
    if not result.is_floating_point():
        raise AnswerError(f"{where} is an int tensor; a gradient holds floats")
    return result.detach().to(torch.float32)
