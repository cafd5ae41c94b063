"""Build a preset's graph from real torch ops and torch.nn modules, run it, snapshot it.

One `Graph` per preset. `compute(values, requires_grad)` runs the forward pass, keeps
every intermediate's gradient (`retain_grad()`, as the seed notebook does), runs the
backward pass from the output, and returns an immutable `Snapshot`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from backprop_tui.engine.errors import ComputeError
from backprop_tui.engine.expr import evaluate
from backprop_tui.engine.ops import TorchOps
from backprop_tui.engine.preset import Preset
from backprop_tui.engine.shapes import check_module_input
from backprop_tui.engine.snapshot import AutogradFn, Node, Snapshot

LeafValues = dict[str, torch.Tensor]


@dataclass
class Trace:
    """Live tensors of one forward pass, for analyses that need the autograd graph."""

    tensors: dict[str, torch.Tensor]
    output: torch.Tensor
    retained: set[str]


class Graph:
    def __init__(self, preset: Preset):
        self.preset = preset
        self.modules: dict[str, nn.Module] = {}
        for spec in preset.modules:
            layer = nn.Linear(spec.in_features, spec.out_features, bias=spec.has_bias)
            self.modules[spec.name] = layer
        self.parameters: dict[str, nn.Parameter] = {
            f"{mname}.{pname}": p for mname, layer in self.modules.items() for pname, p in layer.named_parameters()
        }
        self.inputs: dict[str, tuple[str, ...]] = {leaf.name: () for leaf in preset.leaves}
        module_params = {m.name: m.parameter_names for m in preset.modules}
        for step in preset.steps:
            names: list[str] = []
            for read in step.expr.reads:
                names.extend(module_params.get(read, (read,)))
            self.inputs[step.name] = tuple(dict.fromkeys(names))
        consumers: dict[str, list[str]] = {name: [] for name in self.inputs}
        for name, ins in self.inputs.items():
            for i in ins:
                consumers[i].append(name)
        self.consumers = {k: tuple(v) for k, v in consumers.items()}
        self._steps_by_name = {s.name: s for s in preset.steps}
        self.kinds = {leaf.name: leaf.role for leaf in preset.leaves}
        for step in preset.steps:
            self.kinds[step.name] = "output" if step.name == preset.output else "intermediate"

    def initial_values(self) -> LeafValues:
        return {leaf.name: torch.from_numpy(leaf.initial.copy()) for leaf in self.preset.leaves}

    def initial_requires_grad(self) -> dict[str, bool]:
        return {leaf.name: leaf.requires_grad for leaf in self.preset.leaves}

    # ------------------------------------------------------------ passes

    def forward(self, values: LeafValues, requires_grad: dict[str, bool]) -> Trace:
        env: dict[str, torch.Tensor] = {}
        for leaf in self.preset.leaves:
            value = values[leaf.name]
            if leaf.name in self.parameters:
                param = self.parameters[leaf.name]
                with torch.no_grad():
                    param.copy_(value)
                param.grad = None
                param.requires_grad_(requires_grad[leaf.name])
                env[leaf.name] = param
            else:
                env[leaf.name] = value.detach().requires_grad_(requires_grad[leaf.name])
        seen = {id(t) for t in env.values()}
        retained: set[str] = set()

        def call_module(name: str, x: torch.Tensor) -> torch.Tensor:
            layer = self.modules[name]
            check_module_input(name, layer.in_features, x, ComputeError)
            return layer(x)

        for i, step in enumerate(self.preset.steps):
            ops = TorchOps(env, call_module, ComputeError, f"step {step.name!r}")
            result = evaluate(step.expr.tree, ops)
            if id(result) in seen:  # a bare name: give this node a tensor of its own
                result = result.view_as(result)
            seen.add(id(result))
            if result.requires_grad:
                result.retain_grad()
                retained.add(step.name)
            env[step.name] = result
        return Trace(env, env[self.preset.output], retained)

    def compute(self, values: LeafValues, requires_grad: dict[str, bool]) -> Snapshot:
        try:
            trace = self.forward(values, requires_grad)
            if trace.output.requires_grad:
                trace.output.backward()
        except ComputeError:
            raise
        except (RuntimeError, ValueError, IndexError) as exc:
            raise ComputeError(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__) from None
        return self.snapshot(trace, requires_grad)

    # ------------------------------------------------------------ snapshot

    def snapshot(self, trace: Trace, requires_grad: dict[str, bool]) -> Snapshot:
        nodes = []
        warnings = []
        leaf_names = set(self.preset.leaf_names)
        for name, tensor in trace.tensors.items():
            is_leaf = name in leaf_names
            has_grad = (is_leaf and requires_grad[name]) or name in trace.retained
            grad = tensor.grad if has_grad else None
            value = _frozen(tensor)
            grad_array = None if grad is None else _frozen(grad)
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                warnings.append(f"{name} holds nan or inf")
            elif grad_array is not None and not np.isfinite(grad_array).all():
                warnings.append(f"the gradient of {name} holds nan or inf")
            spec_note, module = "", None
            if is_leaf:
                leaf = self.preset.leaf(name)
                spec_note, module = leaf.note, leaf.module
                expr = ""
            else:
                step = self._step(name)
                spec_note, expr = step.note, step.expr.text
            nodes.append(
                Node(
                    name=name,
                    expr=expr,
                    kind=self.kinds[name],
                    inputs=self.inputs[name],
                    consumers=self.consumers[name],
                    shape=tuple(tensor.shape),
                    dtype="float" if tensor.is_floating_point() else "int",
                    value=value,
                    grad=grad_array,
                    requires_grad=bool(tensor.requires_grad),
                    grad_fn=None if tensor.grad_fn is None else type(tensor.grad_fn).__name__,
                    note=spec_note,
                    module=module,
                )
            )
        return Snapshot(
            preset=self.preset.name,
            title=self.preset.title,
            output=self.preset.output,
            nodes=tuple(nodes),
            autograd=autograd_chains(trace, leaf_names),
            warnings=tuple(warnings),
        )

    def _step(self, name: str):
        return self._steps_by_name[name]


def _frozen(tensor: torch.Tensor) -> np.ndarray:
    array = tensor.detach().numpy().copy()
    array.setflags(write=False)
    return array


def autograd_chains(trace: Trace, leaf_names: set[str]) -> dict[str, AutogradFn]:
    """For each step, the grad_fn chain PyTorch holds, cut where it reaches another named node."""
    produced_by = {id(t.grad_fn): name for name, t in trace.tensors.items() if t.grad_fn is not None}
    leaf_by_tensor = {id(trace.tensors[name]): name for name in leaf_names}

    def walk(fn, root_name: str | None) -> AutogradFn:
        fname = type(fn).__name__
        if fname == "AccumulateGrad":
            return AutogradFn(fname, node=leaf_by_tensor.get(id(fn.variable)))
        owner = produced_by.get(id(fn))
        if owner is not None and owner != root_name:
            return AutogradFn(fname, node=owner, ref=True)
        children = tuple(walk(child, None) for child, _ in fn.next_functions if child is not None)
        return AutogradFn(fname, node=owner, children=children)

    return {
        name: walk(t.grad_fn, name)
        for name, t in trace.tensors.items()
        if name not in leaf_names and t.grad_fn is not None
    }
