"""A convolution's kernel gradient worked out as what it is: a correlation of the input
with the output's gradient. For the inspector's words; the gradient itself is autograd's.

For Conv2d with stride s and padding p, output y[b,o,h,w] = Σ_c,i,j W[o,c,i,j] ·
x_padded[b,c,h·s+i,w·s+j] + bias[o], so ∂L/∂W[o,c,i,j] = Σ_b,h,w G[b,o,h,w] ·
x_padded[b,c,h·s+i,w·s+j]: the input, seen through each kernel position, weighted by the
gradient of every output that position touched. Conv1d is the same with one spatial axis.
"""

from __future__ import annotations

import numpy as np

from backprop_tui.engine.modules import sizes


def kernel_grad(x: np.ndarray, grad: np.ndarray, kernel: tuple[int, ...], stride: tuple[int, ...],
                padding: tuple[int, ...]) -> np.ndarray:
    """∂L/∂W [out, in, *kernel] from the input x [batch, in, *spatial] and the output's grad
    G [batch, out, *out_spatial], by the sum above (float64, no autograd)."""
    dims = len(kernel)
    x = np.pad(x.astype(np.float64), [(0, 0), (0, 0), *((p, p) for p in padding)])
    grad = grad.astype(np.float64)
    out_spatial = grad.shape[2:]
    result = np.zeros((grad.shape[1], x.shape[1], *kernel))
    for offset in np.ndindex(*kernel):  # each kernel position sees a strided window of x
        window = tuple(slice(o, o + s * (n - 1) + 1, s) for o, s, n in zip(offset, stride, out_spatial))
        seen = x[(slice(None), slice(None), *window)]  # [batch, in, *out_spatial]
        axes = (0, *range(2, 2 + dims))
        result[(slice(None), slice(None), *offset)] = np.tensordot(grad, seen, axes=(axes, axes))
    return result


def describe_kernel_grad(node: str, x_name: str, module: str, options: dict, x: np.ndarray, grad: np.ndarray,
                         dims: int) -> tuple[str, np.ndarray]:
    """One line for the inspector, with the first element worked out, and the whole gradient."""
    kernel, stride, padding = (sizes(options[k], dims) for k in ("kernel_size", "stride", "padding"))
    if x.ndim == dims + 1:  # an unbatched input: a batch of one
        x, grad = x[None], grad[None]
    result = kernel_grad(x, grad, kernel, stride, padding)
    ij = ",".join("ij"[:dims]) if dims == 2 else "i"
    hw = "h,w" if dims == 2 else "t"
    shifted = "h+i,w+j" if dims == 2 else "t+i"
    if any(s != 1 for s in stride):
        shifted = "h·s+i,w·s+j" if dims == 2 else "t·s+i"
    text = (
        f"∂L/∂{module}.weight[o,c,{ij}] = Σ_b,{hw} {x_name}[b,c,{shifted}] · ∂L/∂{node}[b,o,{hw}]: "
        f"the correlation of {x_name} with {node}'s gradient"
        + (" (padded with zeros)" if any(padding) else "")
        + f"; [0,0,{','.join('0' * dims)}] = {result.reshape(-1)[0]:.6g}"
    )
    return text, result
