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
from pathlib import Path

import pytest

from backprop_tui.engine import PresetError, load_preset

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
    assert not seen["analyses: sympy"], (
        "the inspector's analyses imported sympy (torch.autograd.grad with grad_outputs does)"
    )


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
    [tensors.C]
    role = "input"
    shape = [1000, 1000]
    init = "ones"
    [tensors.k]
    role = "input"
    dtype = "int"
    shape = [1000]
    init = "randint"
    high = 3
    [modules.wide]
    type = "Linear"
    in_features = 1
    out_features = 10000
    '''
    cases = {"matmul": "sum(a @ b)", "broadcast": "sum(a * b)", "batched": "sum(a @ B)", "linear": "sum(wide(a))",
             "cat": "sum(cat(" + "C, " * 99 + "C))", "one_hot": "sum(one_hot(k, 100000))"}
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
    assert seen["cat"] == f"{too_large} [100000, 1000] (100,000,000 elements); {limit}"
    assert seen["one_hot"] == f"{too_large} [1000, 100000] (100,000,000 elements); {limit}"
    # each would be 400 MB of float32 (one_hot 800 MB of int64 first); the leaves themselves are
    # the 40 MB weight at most
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


# ---------------------------------------------------------------- what computing a preset costs

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad_presets"


def _spy(monkeypatch, owner, name: str) -> list:
    """Every call of owner.name from now on (the call still happens)."""
    calls: list = []
    real = getattr(owner, name)

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls


def _never(what: str):
    def call(*args, **kwargs):
        raise AssertionError(f"{what} ran")

    return call


def test_kept_elements_are_counted_across_steps_and_refused_at_the_step_that_passes(monkeypatch):
    """63 steps of sum(w * w * ... * w) with 19 factors of a 1000x1000 leaf: each keeps 18
    million elements for the backward pass (7.5 GB in all). Refused in the second step, at
    the multiplication that passes the limit; the 61 steps after it are never parsed."""
    from backprop_tui.engine import limits, preset, shapes

    parsed = _spy(monkeypatch, preset, "parse_expression")
    checked = _spy(monkeypatch, shapes.ShapeCheck, "step")
    path = CORPUS / "limit_kept_elements_product_chain.toml"
    with pytest.raises(PresetError) as caught:
        load_preset(path)
    # 18 products of 10^6 elements and a sum in steps[0]; the 7th product of steps[1] passes 25,000,000
    kept = 18 * 10**6 + 1 + 7 * 10**6
    assert kept > limits.MAX_KEPT_ELEMENTS >= kept - 10**6
    assert str(caught.value) == (
        f"{path.name}: step 's1' (steps[1]): too much to keep for the backward pass: the operations up to here "
        f"make {kept:,} elements in all; the limit is {limits.MAX_KEPT_ELEMENTS:,}"
    )
    assert len(parsed) == 2 and len(checked) == 2


def test_multiply_adds_are_refused_before_the_product_runs(monkeypatch):
    """1,998 steps of sum(w @ w @ ... @ w), 29 chained 1000x1000 products (hours of work):
    refused at the third product of the first step, and no product is ever computed."""
    import torch

    from backprop_tui.engine import limits, ops, preset

    monkeypatch.setitem(ops._BINARY, "@", _never("'@'"))
    monkeypatch.setattr(torch, "matmul", _never("torch.matmul"))
    parsed = _spy(monkeypatch, preset, "parse_expression")
    path = CORPUS / "limit_multiply_adds_matmul_chain.toml"
    with pytest.raises(PresetError) as caught:
        load_preset(path)
    assert str(caught.value) == (
        f"{path.name}: step 's0' (steps[0]): too much work: '@' of [1000, 1000] and [1000, 1000] takes "
        f"1,000,000,000 multiply-adds, 3,000,000,000 in all up to here; the limit is {limits.MAX_MULTIPLY_ADDS:,}"
    )
    assert len(parsed) == 1


LINEAR_WORK = """
output = "J"
[tensors.X]
role = "input"
shape = [1000, 1000]
init = "ones"
[modules.layer]
type = "Linear"
in_features = 1000
out_features = 1000
[[steps]]
name = "J"
expr = "{expr}"
"""


def test_linear_layers_count_their_multiply_adds(monkeypatch):
    """A Linear layer of [1000, 1000] is 10^9 multiply-adds: twice is the limit, three times past it,
    refused before F.linear runs."""
    import torch.nn.functional as F

    from backprop_tui.engine import parse_preset

    twice = parse_preset(LINEAR_WORK.format(expr="sum(layer(layer(X)))"), source="twice.toml")
    assert twice.shapes["J"] == ()
    runs = _spy(monkeypatch, F, "linear")
    with pytest.raises(PresetError) as caught:
        parse_preset(LINEAR_WORK.format(expr="sum(layer(layer(layer(X))))"), source="thrice.toml")
    assert len(runs) == 2  # the third is refused before it runs
    assert str(caught.value) == (
        "thrice.toml: step 'J' (steps[0]): too much work: layer() of [1000, 1000] takes 1,000,000,000 "
        "multiply-adds, 3,000,000,000 in all up to here; the limit is 2,000,000,000"
    )


def test_views_keep_nothing_and_every_other_result_is_counted(monkeypatch):
    """What LoadCost adds up for a small preset, worked out by hand: x [4, 5], w [5, 3]."""
    from backprop_tui.engine import parse_preset, shapes

    made = []
    real = shapes.LoadCost.__init__

    def init(self):
        real(self)
        made.append(self)

    monkeypatch.setattr(shapes.LoadCost, "__init__", init)
    parse_preset(
        'output = "J"\n[tensors.x]\nrole = "input"\nshape = [4, 5]\ninit = "ones"\n'
        '[tensors.w]\nrole = "parameter"\nshape = [5, 3]\ninit = "ones"\n'
        '[[steps]]\nname = "h"\nexpr = "relu(x @ w) * 2"\n'
        '[[steps]]\nname = "J"\nexpr = "sum(reshape(h.T, 12) + 1)"\n'
    )
    (cost,) = made
    # h: x @ w (12), relu (12), * 2 (12); J: .T and reshape none, + 1 (12), sum (1)
    assert cost.kept_elements == 12 * 4 + 1
    assert cost.multiply_adds == 4 * 5 * 3


def test_cat_counts_its_result_and_transpose_and_flatten_keep_nothing(monkeypatch):
    """x [4, 5]: cat(x, x) makes 40 elements; transpose and flatten rearrange them; + 1 makes 40, sum 1."""
    from backprop_tui.engine import parse_preset, shapes

    made = []
    real = shapes.LoadCost.__init__

    def init(self):
        real(self)
        made.append(self)

    monkeypatch.setattr(shapes.LoadCost, "__init__", init)
    parse_preset(
        'output = "J"\n[tensors.x]\nrole = "parameter"\nshape = [4, 5]\ninit = "ones"\n'
        '[[steps]]\nname = "J"\nexpr = "sum(flatten(transpose(cat(x, x), 0, 1)) + 1)"\n'
    )
    (cost,) = made
    assert cost.kept_elements == 40 + 40 + 1


def test_an_oversized_cat_is_refused_before_torch_cat_runs(monkeypatch):
    from backprop_tui.engine import functions, parse_preset

    monkeypatch.setitem(functions._RESOLVED, "torch.cat", _never("torch.cat"))
    with pytest.raises(PresetError) as caught:
        parse_preset((CORPUS / "limit_cat_result.toml").read_text(), source="cat.toml")
    assert str(caught.value) == (
        "cat.toml: step 'J' (steps[0]): an operation makes too large a tensor: "
        "shape [1000, 2000] (2,000,000 elements); the limit is 1,000,000"
    )


def test_a_convolution_counts_its_multiply_adds(monkeypatch):
    """Conv2d 300 -> 300 channels, kernel 3, on [1, 300, 57, 57]: an output of [1, 300, 55, 55]
    whose every element is 300 x 9 multiply-adds, 2,450,250,000 in all: refused before it runs."""
    import torch.nn.functional as F

    from backprop_tui.engine import parse_preset

    monkeypatch.setattr(F, "conv2d", _never("F.conv2d"))
    text = (
        'output = "J"\n[tensors.X]\nrole = "input"\nshape = [1, 300, 57, 57]\ninit = "ones"\n'
        '[modules.conv]\ntype = "Conv2d"\nin_channels = 300\nout_channels = 300\nkernel_size = 3\n'
        '[[steps]]\nname = "J"\nexpr = "sum(conv(X))"\n'
    )
    with pytest.raises(PresetError) as caught:
        parse_preset(text, source="conv.toml")
    assert str(caught.value) == (
        "conv.toml: step 'J' (steps[0]): too much work: conv() of [1, 300, 57, 57] takes 2,450,250,000 "
        "multiply-adds, 2,450,250,000 in all up to here; the limit is 2,000,000,000"
    )
