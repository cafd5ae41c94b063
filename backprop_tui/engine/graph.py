"""Build a preset's graph from real torch ops and torch.nn modules, run it, snapshot it.

One `Graph` per preset. `compute(values, requires_grad)` runs the forward pass, calls
`retain_grad()` on every intermediate that requires grad (as the seed notebook does),
runs `backward()` from the output, reads every tensor's `.grad`, and returns an immutable
`Snapshot`.

Speed (see docs/benchmarks.md): steps are compiled once into closures over torch calls
(compiled.py); a snapshot copies the values and gradients that changed into one buffer
per dtype (arrays.py); what does not change between edits (a node's name, kind, inputs,
note, the shape of PyTorch's grad_fn chains, an unchanged leaf's array) is reused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from backprop_tui.engine.arrays import Layout, is_finite, nonfinite_warnings
from backprop_tui.engine.compiled import Step, compile_step
from backprop_tui.engine.errors import ComputeError
from backprop_tui.engine.expr import Ref
from backprop_tui.engine.ops import TorchOps, evaluate_step
from backprop_tui.engine.preset import Preset
from backprop_tui.engine.shapes import check_module_input
from backprop_tui.engine.snapshot import AutogradFn, Node, Snapshot

LeafValues = dict[str, torch.Tensor]
_TORCH_ERRORS = (RuntimeError, ValueError, IndexError, TypeError)


@dataclass
class Trace:
    """Live tensors of one forward pass, for analyses that need the autograd graph."""

    tensors: dict[str, torch.Tensor]
    output: torch.Tensor
    retained: set[str]


def _static(name, expr, kind, inputs, consumers, note, module) -> dict:
    return dict(name=name, expr=expr, kind=kind, inputs=inputs, consumers=consumers, note=note, module=module)


def _structure(preset: Preset) -> tuple:
    """Inputs and consumers of every node, steps by name, kinds, leaf and step names, and
    each node's Node fields that no edit changes: what the preset alone decides."""
    inputs: dict[str, tuple[str, ...]] = {leaf.name: () for leaf in preset.leaves}
    module_params = {m.name: m.parameter_names for m in preset.modules}
    for step in preset.steps:
        names: list[str] = []
        for read in step.expr.reads:
            names.extend(module_params.get(read, (read,)))
        inputs[step.name] = tuple(dict.fromkeys(names))
    consumer_lists: dict[str, list[str]] = {name: [] for name in inputs}
    for name, ins in inputs.items():
        for i in ins:
            consumer_lists[i].append(name)
    consumers = {k: tuple(v) for k, v in consumer_lists.items()}
    kinds = {leaf.name: leaf.role for leaf in preset.leaves}
    for step in preset.steps:
        kinds[step.name] = "output" if step.name == preset.output else "intermediate"
    static = {}
    for leaf in preset.leaves:
        static[leaf.name] = _static(leaf.name, "", leaf.role, (), consumers[leaf.name], leaf.note, leaf.module)
    for step in preset.steps:
        name = step.name
        static[name] = _static(name, step.expr.text, kinds[name], inputs[name], consumers[name], step.note, None)
    leaf_order = preset.leaf_names  # a property that builds its tuple on each call
    step_names = tuple(step.name for step in preset.steps)
    return (
        inputs,
        consumers,
        {s.name: s for s in preset.steps},
        kinds,
        frozenset(leaf_order),
        leaf_order,
        step_names,
        static,
    )


class Graph:
    def __init__(self, preset: Preset):
        self.preset = preset
        self.modules: dict[str, nn.Module] = {}
        self._specs = {spec.name: spec for spec in preset.modules}
        for spec in preset.modules:
            self.modules[spec.name] = spec.kind.build(dict(spec.options), spec.has_bias)  # the real torch.nn module
        # BatchNorm's running statistics: reset before each pass, so a pass depends on the
        # leaves alone (not on how many edits came before); shown, never differentiated
        self._buffered = [(name, layer) for name, layer in self.modules.items() if self._specs[name].kind.buffers]
        self.parameters: dict[str, nn.Parameter] = {
            f"{mname}.{pname}": p for mname, layer in self.modules.items() for pname, p in layer.named_parameters()
        }
        # the preset's structure is the same for every Graph of it: the analyses build a
        # private Graph on every edit (deep_chain: 1.8 -> 0.3 ms)
        (self.inputs, self.consumers, self._steps_by_name, self.kinds, self._leaf_names, self._leaf_order,
         self._step_names, self._static) = preset.derived("_structure", lambda: _structure(preset))
        self._runs = self._step_runs()
        self._loaded: dict[str, tuple[torch.Tensor, int, int]] = {}  # parameter -> (source, versions)
        self._aliases: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # other leaves -> (source, leaf tensor)
        self._leaf_arrays: dict[
            str, tuple[torch.Tensor, int, np.ndarray, bool]
        ] = {}  # (tensor, version, array, finite)
        self._chains: tuple[tuple, dict[str, AutogradFn]] | None = None
        self._layouts: dict[tuple, Layout] = {}  # which nodes are copied -> where they go
        # (snapshot, trace, requires_grad) of the last compute, for the analyses of that
        # very state (analysis.live.session_pass): valid until the next compute, which
        # writes into the leaves and parameters the trace holds
        self.last_pass: tuple[Snapshot, Trace, dict[str, bool]] | None = None

    def _step_runs(self) -> list[tuple[str, Step, bool]]:
        """Each step as a function of the environment (compiled, once its shapes are checked),
        and whether it is a bare name, which evaluates to that node's own tensor."""
        checked = not self.preset.shapes  # a Preset not made by the loader: keep TorchOps' checks
        # Without modules the compiled steps hold no state of this Graph: every Graph of
        # the preset shares them (the analyses build private Graphs on every edit, and
        # compiling deep_chain's 500 steps takes longer than running them).
        shareable = not checked and not self.modules

        def runs() -> list[tuple[str, Step, bool]]:
            return [
                (
                    step.name,
                    self._checked_run(step) if checked else compile_step(step.expr.tree, self.modules),
                    isinstance(step.expr.tree, Ref),
                )
                for step in self.preset.steps
            ]

        return self.preset.derived("_shared_runs", runs) if shareable else runs()

    def _checked_run(self, step) -> Step:
        where = f"step {step.name!r}"
        return lambda env: evaluate_step(step.expr.tree, TorchOps(env, self._call_module, ComputeError, where))

    def _call_module(self, name: str, x: torch.Tensor) -> torch.Tensor:
        check_module_input(self._specs[name], x, ComputeError)
        return self.modules[name](x)

    def initial_values(self) -> LeafValues:
        return {leaf.name: torch.from_numpy(leaf.initial.copy()) for leaf in self.preset.leaves}

    def initial_requires_grad(self) -> dict[str, bool]:
        return {leaf.name: leaf.requires_grad for leaf in self.preset.leaves}

    # ------------------------------------------------------------ passes

    def forward(self, values: LeafValues, requires_grad: dict[str, bool]) -> Trace:
        """Run the steps; every step that requires grad keeps its .grad after a backward()."""
        env: dict[str, torch.Tensor] = {}
        for _, layer in self._buffered:
            layer.reset_running_stats()
        for leaf in self.preset.leaves:
            name = leaf.name
            value = values[name]
            param = self.parameters.get(name)
            if param is not None:
                self._load(name, param, value)
                param.grad = None  # backward() accumulates into .grad
                if param.requires_grad != requires_grad[name]:
                    param.requires_grad_(requires_grad[name])
                env[name] = param
            else:
                env[name] = self._alias(name, value, requires_grad[name])
        retained: set[str] = set()
        for name, run, bare in self._runs:
            try:
                result = run(env)
            except ComputeError:
                raise
            except _TORCH_ERRORS as exc:
                raise self._explain(name, env, exc) from None
            if bare:  # a step that is just another node's name: give it a tensor of its own
                result = result.view_as(result)
            if result.requires_grad:
                result.retain_grad()
                retained.add(name)
            env[name] = result
        return Trace(env, env[self.preset.output], retained)

    def _load(self, name: str, param: nn.Parameter, value: torch.Tensor) -> None:
        """Copy a leaf value into its nn.Parameter, unless it holds that very value already."""
        loaded = self._loaded.get(name)
        if loaded is not None and loaded[0] is value and loaded[1] == value._version and loaded[2] == param._version:
            return
        param.detach().copy_(value)  # shares the version counter: param._version moves on
        self._loaded[name] = (value, value._version, param._version)

    def _alias(self, name: str, value: torch.Tensor, requires_grad: bool) -> torch.Tensor:
        """A leaf tensor of our own for `value`: the same one while `value` is the same tensor.

        Like an nn.Parameter, it keeps its identity from one pass to the next (its .grad is
        reset), so the snapshot can tell an unchanged leaf by identity and version.
        """
        kept = self._aliases.get(name)
        if kept is not None and kept[0] is value:
            alias = kept[1]
            alias.grad = None
            if alias.requires_grad != requires_grad:
                alias.requires_grad_(requires_grad)
            return alias
        alias = value.detach().requires_grad_(requires_grad)
        self._aliases[name] = (value, alias)
        return alias

    def _explain(self, name: str, env: dict[str, torch.Tensor], exc: Exception) -> ComputeError:
        """The error of a failed compiled step, worded by re-running it through TorchOps."""
        try:
            self._checked_run(self._steps_by_name[name])(env)
        except ComputeError as worded:
            return worded
        except _TORCH_ERRORS:
            pass
        text = str(exc).strip()
        return ComputeError(f"step {name!r}: {text.splitlines()[0] if text else type(exc).__name__}")

    def compute(self, values: LeafValues, requires_grad: dict[str, bool]) -> Snapshot:
        """Forward, backward, snapshot, as the seed does it: every intermediate that requires
        grad calls retain_grad(), backward() runs from the output, and the gradients are
        read from each tensor's .grad."""
        try:
            trace = self.forward(values, requires_grad)
            if trace.output.requires_grad:
                trace.output.backward()
        except ComputeError:
            raise
        except (RuntimeError, ValueError, IndexError) as exc:
            raise ComputeError(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__) from None
        snapshot = self.snapshot(trace, requires_grad)
        self.last_pass = (snapshot, trace, dict(requires_grad))
        return snapshot

    # ------------------------------------------------------------ snapshot

    def snapshot(self, trace: Trace, requires_grad: dict[str, bool]) -> Snapshot:
        """The snapshot of a trace after forward() and backward(), from the tensors' .grad."""
        leaf_names = self._leaf_names
        grads = {
            name: tensor.grad
            for name, tensor in trace.tensors.items()
            if ((name in leaf_names and requires_grad[name]) or name in trace.retained) and tensor.grad is not None
        }
        return self._snapshot(trace, requires_grad, grads)

    def _snapshot(self, trace: Trace, requires_grad: dict[str, bool], grads: dict[str, torch.Tensor]) -> Snapshot:
        tensors = trace.tensors
        values, grad_arrays, finite = self._arrays(tensors, grads)
        warnings = [] if finite else nonfinite_warnings(values, grad_arrays)
        chains = self._autograd(trace, requires_grad)
        nodes = []
        for name, tensor in tensors.items():
            chain = chains.get(name)
            value = values[name]  # a numpy array of the tensor's shape and dtype
            fields = dict(
                self._static[name],
                shape=value.shape,
                dtype="float" if value.dtype.kind == "f" else "int",
                value=value,
                grad=grad_arrays.get(name),
                requires_grad=tensor.requires_grad,
                grad_fn=None if chain is None else chain.name,  # = type(tensor.grad_fn).__name__
            )
            nodes.append(Node.trusted(fields))
        return Snapshot(
            preset=self.preset.name,
            title=self.preset.title,
            output=self.preset.output,
            nodes=tuple(nodes),
            autograd=dict(chains),  # AutogradFn nodes are immutable; the dict is each snapshot's own
            warnings=tuple(warnings),
            buffers=self._buffers(),
        )

    def _buffers(self) -> dict[str, np.ndarray]:
        """The running statistics each BatchNorm module holds after this pass (read-only copies)."""
        buffers = {}
        for name, layer in self._buffered:
            for buffer in self._specs[name].kind.buffers:
                array = getattr(layer, buffer).detach().numpy().copy()
                array.setflags(write=False)
                buffers[f"{name}.{buffer}"] = array
        return buffers

    def _arrays(
        self, tensors: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], bool]:
        """Every node's value and gradient as read-only arrays, and whether all are finite.

        A leaf whose tensor is the one of the last snapshot, at the same version, keeps
        its array: an edit of one weight copies that weight, not the input batch too.
        """
        kept = self._leaf_arrays
        unchanged = {
            name: kept[name]
            for name in self._leaf_names
            if name in kept and kept[name][0] is tensors[name] and kept[name][1] == tensors[name]._version
        }
        fresh_names = tuple(name for name in tensors if name not in unchanged)
        # Steps' shapes follow from the leaves' shapes, so these name the layout exactly.
        key = (fresh_names, tuple(grads), tuple(tensors[name].shape for name in self._leaf_order))
        copies, finite = self._copy(key, [tensors[n] for n in fresh_names] + list(grads.values()))
        fresh = dict(zip(fresh_names, copies))
        values = {name: unchanged[name][2] if name in unchanged else fresh[name] for name in tensors}
        self._leaf_arrays = {
            name: unchanged.get(name)
            or (tensors[name], tensors[name]._version, values[name], finite or is_finite(values[name]))
            for name in self._leaf_names
        }
        grad_arrays = dict(zip(grads, copies[len(fresh_names) :]))
        return values, grad_arrays, finite and all(entry[3] for entry in unchanged.values())

    def _copy(self, key: tuple, tensors: list[torch.Tensor]) -> tuple[list[np.ndarray], bool]:
        """arrays.frozen_arrays(tensors), with the layout of the last edit that copied the same nodes."""
        layout = self._layouts.get(key)
        result = None if layout is None else layout.copy(tensors)
        if result is None:
            if len(self._layouts) >= 64:
                self._layouts.clear()
            layout = self._layouts[key] = Layout(tensors)
            result = layout.copy(tensors)
            assert result is not None
        return result

    def _autograd(self, trace: Trace, requires_grad: dict[str, bool]) -> dict[str, AutogradFn]:
        """autograd_chains(trace), worked out again only when a requires_grad flag changes.

        Which grad_fn objects PyTorch builds depends on the ops, the shapes, the dtypes and
        which tensors require grad, never on the values, and only the flags can change
        after loading. Asking a fresh tensor for its grad_fn makes a Python object for it,
        so the cache is checked with what is cheap to read: which steps require grad, and
        the output's grad_fn.
        """
        key = tuple(requires_grad[name] for name in self._leaf_order)
        tensors = trace.tensors
        if self._chains is not None and self._chains[0] == key:
            chains = self._chains[1]
            output = tensors[self.preset.output]
            if all(tensors[name].requires_grad == (name in chains) for name in self._step_names) and (
                output.grad_fn is None if self.preset.output not in chains
                else type(output.grad_fn).__name__ == chains[self.preset.output].name
            ):
                return chains
        chains = autograd_chains(trace, set(self._leaf_names))
        self._chains = (key, chains)
        return chains


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
