"""Fused GELU (exact) vs its composite and PyTorch on a (16, 128, 1024) activation, forward +
backward. ``python -m benchmarks.bench_gelu``"""

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F
from benchmarks.kernel_bench import Case, cpu, main_for, torch_for


def case(device="cpu", quick=False) -> Case:
    shape = (16, 128, 1024)
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal(shape, dtype=np.float32) * 2
    gy_np = rng.standard_normal(shape, dtype=np.float32)
    x = mg.tensor(x_np, device=device, requires_grad=True)
    gy = mg.tensor(gy_np, device=device)

    def run():
        y = F.gelu(x)
        return y, mg.grad(y, [x], gy)

    def values():
        y, (gx,) = run()
        return [cpu(y), cpu(gx)]

    torch, tdev = torch_for(device)
    torch_step = None
    if torch is not None:
        tx = torch.tensor(x_np, device=tdev, requires_grad=True)
        tgy = torch.tensor(gy_np, device=tdev)

        def torch_step():
            torch.autograd.grad(torch.nn.functional.gelu(tx), [tx], tgy)

    n = int(np.prod(shape))
    return Case("gelu", f"{shape} float32, exact", run, values, torch_step, torch_device=tdev,
                bytes=5 * n * 4)  # x, y, dy/dx; dy, dx


if __name__ == "__main__":
    main_for(case)
