"""Fused layer norm vs its composite and PyTorch: W4's (16 * 128, 256) rows (a larger (8192,
1024) on a GPU), forward + backward. ``python -m benchmarks.bench_layer_norm``"""

import numpy as np

import minigrad.nn.functional as F
from benchmarks.kernel_bench import Case, grad_case, main_for


def case(device="cpu", quick=False) -> Case:
    N, D = (2048, 256) if device == "cpu" else (8192, 1024)
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((N, D), dtype=np.float32) * 2 + 1
    w_np = rng.standard_normal(D, dtype=np.float32)
    b_np = rng.standard_normal(D, dtype=np.float32)
    gy_np = rng.standard_normal((N, D), dtype=np.float32)

    # x, y, dy, dx once each, plus xhat written and read: the least traffic of fwd + bwd
    return grad_case(
        "layer_norm", f"({N}, {D}) float32",
        lambda x, w, b: F.layer_norm(x, (D,), w, b),
        lambda tF, x, w, b: tF.layer_norm(x, (D,), w, b),
        [x_np, w_np, b_np], gy_np, device, bytes=6 * N * D * 4)


if __name__ == "__main__":
    main_for(case)
