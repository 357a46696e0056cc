"""Fused batch norm (training mode) vs its composite and PyTorch: (128, 64, 14, 14) float32,
a CNN's second block, forward + backward. ``python -m benchmarks.bench_batch_norm``"""

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F
from benchmarks.kernel_bench import Case, cpu, main_for, torch_for


def case(device="cpu", quick=False) -> Case:
    N, C, H, W = (128, 64, 14, 14) if not quick else (16, 64, 14, 14)
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((N, C, H, W), dtype=np.float32) * 2 + 1
    w_np = rng.standard_normal(C, dtype=np.float32)
    b_np = rng.standard_normal(C, dtype=np.float32)
    gy_np = rng.standard_normal((N, C, H, W), dtype=np.float32)
    x, w, b = (mg.tensor(a, device=device, requires_grad=True) for a in (x_np, w_np, b_np))
    gy = mg.tensor(gy_np, device=device)

    def run():
        y = F.batch_norm(x, None, None, w, b, training=True)
        return y, mg.grad(y, [x, w, b], gy)

    def values():
        y, gs = run()
        return [cpu(y)] + [cpu(g) for g in gs]

    torch, tdev = torch_for(device)
    torch_step = None
    if torch is not None:
        tx, tw, tb = (torch.tensor(a, device=tdev, requires_grad=True) for a in (x_np, w_np, b_np))
        tgy = torch.tensor(gy_np, device=tdev)

        def torch_step():
            y = torch.nn.functional.batch_norm(tx, None, None, tw, tb, training=True)
            torch.autograd.grad(y, [tx, tw, tb], tgy)

    # x read twice and y written (forward), x and dy read twice and dx written (backward)
    return Case("batch_norm", f"({N}, {C}, {H}, {W}) float32", run, values, torch_step,
                torch_device=tdev, bytes=8 * N * C * H * W * 4)


if __name__ == "__main__":
    main_for(case)
