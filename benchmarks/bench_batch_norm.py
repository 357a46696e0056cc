"""Fused batch norm (training mode) vs its composite and PyTorch: (128, 64, 14, 14) float32,
a CNN's second block, forward + backward. ``python -m benchmarks.bench_batch_norm``"""

import numpy as np

import minigrad.nn.functional as F
from benchmarks.kernel_bench import Case, grad_case, main_for


def case(device="cpu", quick=False) -> Case:
    N, C, H, W = (128, 64, 14, 14) if not quick else (16, 64, 14, 14)
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((N, C, H, W), dtype=np.float32) * 2 + 1
    w_np = rng.standard_normal(C, dtype=np.float32)
    b_np = rng.standard_normal(C, dtype=np.float32)
    gy_np = rng.standard_normal((N, C, H, W), dtype=np.float32)

    # x read twice and y written (forward), x and dy read twice and dx written (backward)
    return grad_case(
        "batch_norm", f"({N}, {C}, {H}, {W}) float32",
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        lambda tF, x, w, b: tF.batch_norm(x, None, None, w, b, training=True),
        [x_np, w_np, b_np], gy_np, device, bytes=8 * N * C * H * W * 4)


if __name__ == "__main__":
    main_for(case)
