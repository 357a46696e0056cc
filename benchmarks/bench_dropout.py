"""Fused dropout vs its composite and PyTorch on a (16, 128, 1024) activation, p = 0.1,
forward + backward. ``python -m benchmarks.bench_dropout``

The fused kernel draws its own mask (on the CPU from raw random words, on CUDA from a hash), so
the validation checks the semantics on every device: every element dropped or scaled by
1 / (1 - p), the gradient through the same mask, about a fraction p dropped."""

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F
from benchmarks.kernel_bench import Case, cpu, main_for, torch_for


def case(device="cpu", quick=False) -> Case:
    shape = (16, 128, 1024)
    p = 0.1
    rng = np.random.default_rng(0)
    x_np = rng.random(shape, dtype=np.float32) + 1
    x = mg.tensor(x_np, device=device, requires_grad=True)
    ones = mg.ones(*shape, device=device)

    def run():
        y = F.dropout(x, p)
        return y, mg.grad(y, [x], ones)

    def values():
        y, (gx,) = run()
        y, gx = cpu(y), cpu(gx)
        kept = y != 0  # different random streams: compare the semantics
        return [np.where(kept, y * (1 - p) - x_np, 0), ((gx != 0) ^ kept).astype(np.float32),
                np.array([float(abs(kept.mean() - (1 - p)) < 0.01)])]

    torch, tdev = torch_for(device)
    torch_step = None
    if torch is not None:
        tx = torch.tensor(x_np, device=tdev, requires_grad=True)
        tones = torch.ones(shape, device=tdev)

        def torch_step():
            torch.autograd.grad(torch.nn.functional.dropout(tx, p), [tx], tones)

    n = int(np.prod(shape))
    return Case("dropout", f"{shape} float32, p={p}", run, values, torch_step, torch_device=tdev,
                bytes=4 * n * 4)  # x, y; dy, dx (the CUDA mask is never stored)


if __name__ == "__main__":
    main_for(case)
