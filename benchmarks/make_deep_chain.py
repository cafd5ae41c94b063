"""Write presets/deep_chain.toml: 250 layers of `a = w*h + b; h = tanh(a)` (500 steps), then the cost.

Run from the repository root: `python benchmarks/make_deep_chain.py`. The preset is
committed; this script is how it was made (and how to make a longer or shorter one).
"""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """\
Vanishing gradients, one number per step. A scalar input x goes through {layers}
layers that share one weight w and one bias b: a_k = w * h_(k-1) + b, then
h_k = tanh(a_k), with h_0 = x; the cost is J = (h_{layers} - y)^2 / 2 ({steps} steps).
Backprop multiplies one local derivative per layer, dh_k/dh_(k-1) = w * (1 - h_k^2).
With w = 1 each factor is a little below 1, and the product of {layers} of them is small:
dJ/dh_{layers} is about -0.92 but dJ/dx only about -0.00038. Set w to 0.9 (the signal dies
out) or to 1.2 (tanh saturates) and every factor stays clearly below 1: dJ/dx falls to
about 4e-13, or to about 1e-43, at the edge of what float32 can hold.
w and b collect gradient from every layer, but the early layers add almost nothing:
compare the gradients of a1 and a{layers}.
"""


def chain_toml(layers: int) -> str:
    lines = [
        'name = "deep_chain"',
        f'title = "Deep chain: {layers} tanh layers on one scalar (vanishing gradients)"',
        f'description = """\n{DESCRIPTION.format(layers=layers, steps=2 * layers + 1)}"""',
        'output = "J"',
        "learning_rate = 0.1",
        "",
        "[tensors.x]",
        'role = "input"',
        "value = 1.0",
        "requires_grad = true",
        'note = "Requires grad so that dJ/dx shows how much gradient survives the chain."',
        "",
        "[tensors.y]",
        'role = "target"',
        "value = 1.0",
        "",
        "[tensors.w]",
        'role = "parameter"',
        "value = 1.0",
        f'note = "One weight shared by all {layers} layers; its gradient sums over them."',
        "",
        "[tensors.b]",
        'role = "parameter"',
        "value = 0.0",
        "",
    ]
    previous = "x"
    for k in range(1, layers + 1):
        lines += ["[[steps]]", f'name = "a{k}"', f'expr = "w * {previous} + b"']
        if k == 1:
            lines.append('note = "The affine part of layer 1: a_1 = w * x + b."')
        lines += ["", "[[steps]]", f'name = "h{k}"', f'expr = "tanh(a{k})"']
        if k == 1:
            lines.append(
                'note = "dh/da = 1 - tanh(a)^2, at most 1: each layer can only shrink the gradient (for |w| <= 1)."'
            )
        lines.append("")
        previous = f"h{k}"
    lines += [
        "[[steps]]",
        'name = "J"',
        f'expr = "(h{layers} - y)**2 / 2"',
        'note = "The cost; its gradient starts at 1 and is multiplied by one factor per layer on the way back."',
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=250)
    root = Path(__file__).resolve().parent.parent
    parser.add_argument("--out", type=Path, default=root / "presets" / "deep_chain.toml")
    args = parser.parse_args()
    args.out.write_text(chain_toml(args.layers), encoding="utf-8")
    print(f"wrote {args.out} ({2 * args.layers + 1} steps)")


if __name__ == "__main__":
    main()
