"""Fused softmax cross-entropy vs its composite and PyTorch: W4's (2048, 1000) logits, with
label smoothing, forward + backward. ``python -m benchmarks.bench_softmax_cross_entropy``"""

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F
from benchmarks.kernel_bench import Case, cpu, main_for, torch_for


def case(device="cpu", quick=False) -> Case:
    N, C = 2048, 1000
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((N, C), dtype=np.float32) * 3
    t_np = rng.integers(0, C, N)
    x = mg.tensor(x_np, device=device, requires_grad=True)
    t = mg.tensor(t_np, device=device)

    def step():
        x.grad = None
        F.cross_entropy(x, t, label_smoothing=0.1).backward()

    def values():
        x.grad = None
        loss = F.cross_entropy(x, t, label_smoothing=0.1)
        loss.backward()
        return [cpu(loss), cpu(x.grad)]

    torch, tdev = torch_for(device)
    torch_step = None
    if torch is not None:
        tx = torch.tensor(x_np, device=tdev, requires_grad=True)
        tt = torch.tensor(t_np, device=tdev)

        def torch_step():
            tx.grad = None
            torch.nn.functional.cross_entropy(tx, tt, label_smoothing=0.1).backward()

    return Case("softmax_cross_entropy", f"({N}, {C}) float32, smoothing 0.1", step, values,
                torch_step, torch_device=tdev, bytes=3 * N * C * 4)


if __name__ == "__main__":
    main_for(case)
