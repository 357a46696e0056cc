"""Fused max pooling vs its composite and PyTorch: W5's first pool, 2x2 over (128, 32, 26, 26)
float32, forward + backward. ``python -m benchmarks.bench_maxpool``"""

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F
from benchmarks.kernel_bench import Case, cpu, main_for, torch_for


def case(device="cpu", quick=False) -> Case:
    N, C, H, W = (128, 32, 26, 26) if not quick else (16, 32, 26, 26)
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((N, C, H, W), dtype=np.float32)
    gy_np = rng.standard_normal((N, C, H // 2, W // 2), dtype=np.float32)
    x = mg.tensor(x_np, device=device, requires_grad=True)
    gy = mg.tensor(gy_np, device=device)

    def run():
        y = F.max_pool2d(x, 2)
        return y, mg.grad(y, [x], gy)

    def values():
        y, gs = run()
        return [cpu(y)] + [cpu(g) for g in gs]

    torch, tdev = torch_for(device)
    torch_step = None
    if torch is not None:
        tx = torch.tensor(x_np, device=tdev, requires_grad=True)
        tgy = torch.tensor(gy_np, device=tdev)

        def torch_step():
            y = torch.nn.functional.max_pool2d(tx, 2)
            torch.autograd.grad(y, [tx], tgy)

    # x read, y and indices written, dy and indices read, dx written
    out = N * C * (H // 2) * (W // 2)
    return Case("maxpool", f"({N}, {C}, {H}, {W}) 2x2 float32", run, values, torch_step,
                torch_device=tdev, bytes=2 * N * C * H * W * 4 + out * (4 + 8 + 4 + 8))


if __name__ == "__main__":
    main_for(case)
