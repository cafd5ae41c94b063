"""What loading a preset costs: no torch._dynamo or sympy, and no allocation past the limit.

Both run in a fresh interpreter, so that imports and allocations made by other tests in
this process do not interfere.

- torch._dynamo (1.0-1.3 s and about 70 MB) was imported by shape checks on torch's meta
  device, sympy (0.35 s, 30 MB) by those, by `torch.broadcast_shapes` and by
  `torch.autograd.grad` with explicit grad_outputs (the inspector's local derivatives);
  at start-up the explorer waited for them. Loading a bundled preset, building its
  Session and its first snapshot, and the analyses the inspector shows first, must
  import neither. torch itself is imported without garbage collection passes over it,
  and its objects are frozen out of later ones.
- The per-operation element limit is checked before torch runs the operation: a preset
  whose '@', broadcast or Linear layer would make a 10^8-element tensor (400 MB) is
  refused with the limit's message, and the process does not grow by that much.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

LOAD_EVERY_BUNDLED = textwrap.dedent(
    """
    import json, sys
    from backprop_tui.engine import Session, bundled_presets, load_preset, resolve_preset

    names = list(bundled_presets())
    for name in names:
        session = Session(load_preset(resolve_preset(name)))
        session.snapshot.node(session.snapshot.output)
    import gc

    loaded = {
        "torch._dynamo": "torch._dynamo" in sys.modules,
        "sympy": "sympy" in sys.modules,
        "gc enabled": gc.isenabled(),
        "frozen": gc.get_freeze_count(),
    }

    # what the inspector then asks of the engine for the output (on a small preset, on
    # the UI thread before the values are drawn) and for any node
    from backprop_tui.engine.analysis.contributions import node_contributions
    from backprop_tui.engine.analysis.flags import flags
    from backprop_tui.engine.analysis.live import FrozenState
    from backprop_tui.engine.analysis.local import chain_rule, local_derivatives

    for name in ("simple_nn", "softmax_classifier", "gradient_accumulation"):
        state = FrozenState.of(Session(load_preset(resolve_preset(name))))
        for node in [state.preset.output, *state.preset.leaf_names]:
            chain_rule(state, node), local_derivatives(state, node), node_contributions(state, node)
        flags(state)
    print(json.dumps({
        "presets": names,
        **loaded,
        "analyses: torch._dynamo": "torch._dynamo" in sys.modules,
        "analyses: sympy": "sympy" in sys.modules,
    }))
    """
)


def run(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_loading_the_bundled_presets_imports_neither_dynamo_nor_sympy():
    seen = run(LOAD_EVERY_BUNDLED)
    assert len(seen["presets"]) >= 8, seen["presets"]
    assert not seen["torch._dynamo"], "torch._dynamo was imported (about 1 s and 70 MB at start-up)"
    assert not seen["sympy"], "sympy was imported (about 0.35 s and 30 MB at start-up)"
    # torch was imported with the collector paused and its objects frozen (engine.import_torch)
    assert seen["gc enabled"]
    assert seen["frozen"] > 100_000, seen["frozen"]
    assert not seen["analyses: torch._dynamo"], "the inspector's analyses imported torch._dynamo"
    assert not seen["analyses: sympy"], "the inspector's analyses imported sympy (torch.autograd.grad with grad_outputs does)"


REFUSE_BIG = textwrap.dedent(
    """
    import json
    from backprop_tui.engine import PresetError, parse_preset

    def hwm():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM"):
                return int(line.split()[1]) // 1024

    leaves = '''
    [tensors.a]
    role = "input"
    shape = [10000, 1]
    init = "ones"
    [tensors.b]
    role = "input"
    shape = [1, 10000]
    init = "ones"
    [tensors.B]
    role = "input"
    shape = [1, 1, 10000]
    init = "ones"
    [modules.wide]
    type = "Linear"
    in_features = 1
    out_features = 10000
    '''
    cases = {"matmul": "sum(a @ b)", "broadcast": "sum(a * b)", "batched": "sum(a @ B)", "linear": "sum(wide(a))"}
    parse_preset('output = "J"\\n' + leaves + '[[steps]]\\nname = "J"\\nexpr = "sum(a)"\\n', source="warm.toml")
    before = hwm()
    out = {}
    for key, expr in cases.items():
        try:
            parse_preset('output = "J"\\n' + leaves + f'[[steps]]\\nname = "J"\\nexpr = "{expr}"\\n', source="big.toml")
            out[key] = "loaded"
        except PresetError as exc:
            out[key] = str(exc)
    out["grew_mb"] = hwm() - before
    print(json.dumps(out))
    """
)


def test_operations_past_the_limit_are_refused_before_torch_allocates_them():
    seen = run(REFUSE_BIG)
    limit = "the limit is 1,000,000"
    too_large = "big.toml: step 'J' (steps[0]): an operation makes too large a tensor: shape"
    assert seen["matmul"] == f"{too_large} [10000, 10000] (100,000,000 elements); {limit}"
    assert seen["broadcast"] == f"{too_large} [10000, 10000] (100,000,000 elements); {limit}"
    assert seen["batched"] == f"{too_large} [1, 10000, 10000] (100,000,000 elements); {limit}"
    assert seen["linear"] == f"{too_large} [10000, 10000] (100,000,000 elements); {limit}"
    # each would be 400 MB of float32; the leaves themselves are the 40 MB weight at most
    assert seen["grew_mb"] < 100, seen


SHAPE_PAIRS = [
    ((3,), (3,)),
    ((2, 3), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3, 4)),
    ((5, 2, 3), (3, 4)),
    ((3,), (5, 3, 4)),
    ((5, 2, 3), (3,)),
    ((4, 1, 2, 3), (5, 3, 2)),
    ((1, 2, 3), (6, 1, 3, 2)),
    ((2, 2, 3), (3, 3, 2)),  # batch sizes 2 and 3 do not broadcast
    ((2, 3), (4, 2)),  # inner sizes differ
    ((3,), (4,)),
]


@pytest.mark.parametrize(("a", "b"), SHAPE_PAIRS)
def test_matmul_and_broadcast_shapes_are_worked_out_as_torch_does(a, b):
    """The limit's plain-Python arithmetic agrees with torch, refusals included."""
    import torch

    from backprop_tui.engine.ops import broadcast
    from backprop_tui.engine.shapes import _matmul_shape

    def torch_shape(fn):
        try:
            return tuple(fn(torch.zeros(a), torch.zeros(b)).shape)
        except RuntimeError:
            return None

    assert _matmul_shape(a, b) == torch_shape(torch.matmul)
    assert broadcast(a, b) == torch_shape(torch.add)
    assert broadcast(b, a) == torch_shape(lambda x, y: y + x)
