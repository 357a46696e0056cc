"""Fused convolutions (kernels/conv.py) vs their composites and PyTorch, forward + backward
(input, weight and bias gradients): the two conv layers of W5 (MNIST-shaped, batch 128) and a
transposed conv. ``python -m benchmarks.bench_conv``"""

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F
from benchmarks.kernel_bench import Case, grad_case, main_for


def _conv_case(name, x_shape, w_shape, options, device, transposed=False) -> Case:
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal(x_shape, dtype=np.float32)
    w_np = rng.standard_normal(w_shape, dtype=np.float32) * 0.1
    c_out = w_shape[1] * options.get("groups", 1) if transposed else w_shape[0]
    b_np = rng.standard_normal(c_out, dtype=np.float32)
    fn = F.conv_transpose2d if transposed else F.conv2d
    with mg.no_grad():
        out_shape = fn(*(mg.tensor(a, device=device) for a in (x_np, w_np, b_np)),
                       **options).shape
    gy_np = rng.standard_normal(out_shape, dtype=np.float32)

    def torch_fn(tF, x, w, b):
        return (tF.conv_transpose2d if transposed else tF.conv2d)(x, w, b, **options)

    # forward, input gradient, weight gradient: one GEMM each of 2 * out * fan-in flops
    n, k = int(np.prod(out_shape)), int(np.prod(w_shape[1:]))
    if transposed:
        n, k = int(np.prod(x_shape)), int(np.prod(w_shape[1:]))
    shape = f"x {x_shape}, w {w_shape}" + (f", {options}" if options else "")
    return grad_case(name, shape + " float32", lambda x, w, b: fn(x, w, b, **options),
                     torch_fn,
                     [x_np, w_np, b_np], gy_np, device, rtol=1e-3, atol=1e-3, flops=3 * 2 * n * k)


def case(device="cpu", quick=False) -> Case:
    """W5's second conv: 32 -> 64 channels, 3x3, on 13x13 maps, batch 128."""
    batch = 16 if quick else 128
    return _conv_case("conv", (batch, 32, 13, 13), (64, 32, 3, 3), {}, device)


def first_case(device="cpu", quick=False) -> Case:
    """W5's first conv: 1 -> 32 channels, 3x3, on 28x28 images, batch 128."""
    batch = 16 if quick else 128
    return _conv_case("conv_first", (batch, 1, 28, 28), (32, 1, 3, 3), {}, device)


def transpose_case(device="cpu", quick=False) -> Case:
    """A 2x upsampling transposed conv: 64 -> 32 channels, 4x4, stride 2, padding 1."""
    batch = 8 if quick else 64
    return _conv_case("conv_transpose", (batch, 64, 14, 14), (64, 32, 4, 4),
                      dict(stride=2, padding=1), device, transposed=True)


if __name__ == "__main__":
    main_for(case)
