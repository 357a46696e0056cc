"""Fused max pooling vs its composite and PyTorch: W5's first pool, 2x2 over (128, 32, 26, 26)
float32, forward + backward. ``python -m benchmarks.bench_maxpool``"""

import numpy as np

import minigrad.nn.functional as F
from benchmarks.kernel_bench import Case, grad_case, main_for


def case(device="cpu", quick=False) -> Case:
    N, C, H, W = (128, 32, 26, 26) if not quick else (16, 32, 26, 26)
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((N, C, H, W), dtype=np.float32)
    gy_np = rng.standard_normal((N, C, H // 2, W // 2), dtype=np.float32)

    # x read, y and indices written, dy and indices read, dx written
    out = N * C * (H // 2) * (W // 2)
    return grad_case(
        "maxpool", f"({N}, {C}, {H}, {W}) 2x2 float32",
        lambda x: F.max_pool2d(x, 2), lambda tF, x: tF.max_pool2d(x, 2),
        [x_np], gy_np, device, bytes=2 * N * C * H * W * 4 + out * (4 + 8 + 4 + 8))


if __name__ == "__main__":
    main_for(case)
