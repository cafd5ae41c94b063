"""Engine recompute: one edit through Session -> a new Snapshot, on every bundled preset.

The simple_nn figure is a ratio against a hand-written torch forward and backward of the
same network (same weights, same edit written into the weight first, gradients reset),
measured in alternating blocks in the same process.
"""

from __future__ import annotations

import statistics
import sys

import torch
from torch import nn

from benchmarks.common import (
    PRESETS, ROOT, SCALE_PRESETS, Figure, edited_leaf, figure, interleaved_ratio, log, time_calls,
)


def first_editable(session) -> tuple[str, tuple[int, ...], float]:
    """The first float leaf that requires grad (else any float leaf), its first element and value."""
    _, leaf = edited_leaf(session.preset)
    index = (0,) * len(leaf.shape)
    return leaf.name, index, float(leaf.initial[index] if index else leaf.initial)


def edit_fn(session):
    """An edit that alternates one element between its value and value + 0.01."""
    name, index, value = first_editable(session)
    return lambda i: session.set_element(name, index, value + 0.01 * (i % 2))


def hand_written_simple_nn(preset):
    """simple_nn written out in torch by hand: three nn.Linear, ReLU, ReLU, Sigmoid, J."""
    leaf = {x.name: torch.from_numpy(x.initial.copy()) for x in preset.leaves}
    X, Y = leaf["X"], leaf["Y"]
    layers = []
    for name, (n_in, n_out) in (("linear1", (2, 3)), ("linear2", (3, 2)), ("linear3", (2, 1))):
        layer = nn.Linear(n_in, n_out)
        with torch.no_grad():
            layer.weight.copy_(leaf[f"{name}.weight"])
            layer.bias.copy_(leaf[f"{name}.bias"])
        layers.append(layer)
    l1, l2, l3 = layers
    w00 = float(l1.weight.detach()[0, 0])
    params = [p for layer in layers for p in layer.parameters()]

    def run(i: int, retain: bool = False):
        with torch.no_grad():
            l1.weight[0, 0] = w00 + 0.01 * (i % 2)
        for p in params:
            p.grad = None
        Z1 = l1(X)
        A1 = torch.relu(Z1)
        Z2 = l2(A1)
        A2 = torch.relu(Z2)
        Z3 = l3(A2)
        A3 = torch.sigmoid(Z3)
        J = torch.sum((A3 - Y) ** 2) / (2 * 2)
        if retain:
            for t in (Z1, A1, Z2, A2, Z3, A3, J):
                t.retain_grad()
        J.backward()
        return J

    return run


def hand_written_makemore(preset):
    """makemore_backprop as the notebook writes its forward pass (the tests' torch reference,
    tests/engine/torch_reference.py), `retain_grad()` on each intermediate, as the notebook
    does to check every one of their grads."""
    sys.path.insert(0, str(ROOT / "tests" / "engine"))
    import torch_reference

    leaf = {x.name: torch.from_numpy(x.initial.copy()) for x in preset.leaves}
    leaf["Xb"], leaf["Yb"] = leaf["Xb"].long(), leaf["Yb"].long()
    params = [leaf[name].requires_grad_() for name in ("C", "W1", "b1", "bngain", "bnbias", "W2", "b2")]
    c00 = float(leaf["C"].detach()[0, 0])

    def run(i: int, retain: bool = True):
        with torch.no_grad():
            leaf["C"][0, 0] = c00 + 0.01 * (i % 2)
        for p in params:
            p.grad = None
        steps = torch_reference.makemore_backprop(leaf)
        if retain:
            for name, t in steps.items():
                if name != "loss":
                    t.retain_grad()
        steps["loss"].backward()
        return steps["loss"]

    return run


def run(quick: bool = False) -> list[Figure]:
    from backprop_tui.engine import Session, load_preset, resolve_preset

    figures: list[Figure] = []
    rounds, per_round = (6, 50) if quick else (20, 200)

    log("engine: simple_nn against hand-written torch")
    session = Session(load_preset(resolve_preset("simple_nn")))
    edit = edit_fn(session)
    hand = hand_written_simple_nn(session.preset)
    hand(0)  # warm up both
    edit(0)
    engine_s, hand_s, ratios = interleaved_ratio(edit, hand, rounds, per_round)
    figures.append(figure("Engine", "simple_nn recompute / hand-written torch forward+backward", ratios, "x",
                          2.0, "≤ 2×", note=f"{statistics.median(engine_s) * 1e6:.0f} µs vs "
                                            f"{statistics.median(hand_s) * 1e6:.0f} µs"))
    retained = lambda i: hand(i, retain=True)  # noqa: E731
    _, _, ratios_r = interleaved_ratio(edit, retained, max(4, rounds // 2), per_round)
    figures.append(
        figure(
            "Engine",
            "simple_nn recompute / hand-written with retain_grad on every step",
            ratios_r,
            "x",
            note="the same baseline keeping every intermediate's grad, as the notebook does",
        )
    )

    log("engine: makemore_backprop against the notebook's hand-written torch")
    session = Session(load_preset(resolve_preset("makemore_backprop")))
    edit = edit_fn(session)
    hand = hand_written_makemore(session.preset)
    hand(0)
    edit(0)
    engine_s, hand_s, ratios = interleaved_ratio(edit, hand, rounds, per_round // 2)
    figures.append(figure("Engine", "makemore_backprop recompute / the notebook's torch (retain_grad on every step)",
                          ratios, "x", 2.0, "≤ 2×", note=f"{statistics.median(engine_s) * 1e6:.0f} µs vs "
                                                        f"{statistics.median(hand_s) * 1e6:.0f} µs"))
    _, plain_s, ratios_p = interleaved_ratio(edit, lambda i: hand(i, retain=False), max(4, rounds // 2), per_round // 2)
    figures.append(figure("Engine", "makemore_backprop recompute / the same torch without retain_grad", ratios_p, "x",
                          note=f"{statistics.median(plain_s) * 1e6:.0f} µs by hand: only the leaves' grads"))

    for name in PRESETS:
        log(f"engine: recompute {name}")
        session = Session(load_preset(resolve_preset(name)))
        edit = edit_fn(session)
        n = 60 if quick else (200 if name not in SCALE_PRESETS else 300)
        time_calls(edit, 5)
        seconds = time_calls(edit, n)
        scale = name in SCALE_PRESETS
        figures.append(figure("Engine", f"recompute {name} (edit → snapshot)", [s * 1e3 for s in seconds], "ms",
                              50.0 if scale else None, "≤ 50 ms (well under)" if scale else ""))

    log("engine: SGD step on mlp_784")
    session = Session(load_preset(resolve_preset("mlp_784")))
    seconds = time_calls(lambda i: session.step(), 30 if quick else 100)
    figures.append(figure("Engine", "SGD step on mlp_784 (update + recompute)", [s * 1e3 for s in seconds], "ms",
                          50.0, "≤ 50 ms (no UI stall)"))
    return figures


if __name__ == "__main__":
    for f in run(quick=True):
        print(f"{f.name}: {f.median:.3f} {f.unit} [{f.low:.3f}, {f.high:.3f}] {f.verdict} {f.note}")
