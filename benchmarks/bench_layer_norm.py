"""Fused layer norm vs its composite and PyTorch: W4's (16 * 128, 256) rows (a larger (8192,
1024) on a GPU), forward + backward. ``python -m benchmarks.bench_layer_norm``"""

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F
from benchmarks.kernel_bench import Case, cpu, main_for, torch_for


def case(device="cpu", quick=False) -> Case:
    N, D = (2048, 256) if device == "cpu" else (8192, 1024)
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((N, D), dtype=np.float32) * 2 + 1
    w_np = rng.standard_normal(D, dtype=np.float32)
    b_np = rng.standard_normal(D, dtype=np.float32)
    gy_np = rng.standard_normal((N, D), dtype=np.float32)
    x, w, b = (mg.tensor(a, device=device, requires_grad=True) for a in (x_np, w_np, b_np))
    gy = mg.tensor(gy_np, device=device)

    def run():
        y = F.layer_norm(x, (D,), w, b)
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
            y = torch.nn.functional.layer_norm(tx, (D,), tw, tb)
            torch.autograd.grad(y, [tx, tw, tb], tgy)

    # x, y, dy, dx once each, plus xhat written and read: the least traffic of fwd + bwd
    return Case("layer_norm", f"({N}, {D}) float32", run, values, torch_step, torch_device=tdev,
                bytes=6 * N * D * 4)


if __name__ == "__main__":
    main_for(case)
