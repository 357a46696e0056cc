"""Fused GELU (exact) vs its composite and PyTorch on a (16, 128, 1024) activation, forward +
backward. ``python -m benchmarks.bench_gelu``"""

import numpy as np

import minigrad.nn.functional as F
from benchmarks.kernel_bench import Case, grad_case, main_for


def case(device="cpu", quick=False) -> Case:
    shape = (16, 128, 1024)
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal(shape, dtype=np.float32) * 2
    gy_np = rng.standard_normal(shape, dtype=np.float32)

    n = int(np.prod(shape))
    return grad_case("gelu", f"{shape} float32, exact", F.gelu, lambda tF, x: tF.gelu(x),
                     [x_np], gy_np, device, bytes=5 * n * 4)  # x, y, dy/dx; dy, dx


if __name__ == "__main__":
    main_for(case)
