"""Fused attention vs its composite and PyTorch's scaled_dot_product_attention: W4's causal
self-attention (batch 16, 4 heads, T 128, head dim 64) on the CPU; on a GPU also T = 4096
(batch 1, 16 heads), where the flash kernel's memory traffic and FLOP rate are reported.
``python -m benchmarks.bench_attention``"""

import numpy as np

import minigrad as mg
from benchmarks.kernel_bench import Case, cpu, main_for, torch_for
from minigrad.nn.attention import scaled_dot_product_attention as sdpa


def case(device="cpu", quick=False, long=False) -> Case:
    B, H, T, E = (1, 16, 4096, 64) if long else (16, 4, 128, 64)
    rng = np.random.default_rng(0)
    q_np, k_np, v_np, gy_np = (rng.standard_normal((B, H, T, E), dtype=np.float32)
                               for _ in range(4))
    q, k, v = (mg.tensor(a, device=device, requires_grad=True) for a in (q_np, k_np, v_np))
    gy = mg.tensor(gy_np, device=device)

    def run():
        out = sdpa(q, k, v, is_causal=True)
        return out, mg.grad(out, [q, k, v], gy)

    def values():
        out, gs = run()
        return [cpu(out)] + [cpu(g) for g in gs]

    torch, tdev = torch_for(device)
    torch_step = None
    if torch is not None:
        tq, tk, tv = (torch.tensor(a, device=tdev, requires_grad=True) for a in (q_np, k_np, v_np))
        tgy = torch.tensor(gy_np, device=tdev)

        def torch_step():
            out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
            torch.autograd.grad(out, [tq, tk, tv], tgy)

    n = B * H * T * E
    # causal: half of the 2 * 2 * T * T * E forward FLOPs, 2.5x that for the backward
    flops = 3.5 * 2 * B * H * T * T * E
    return Case("attention" + ("_T4096" if long else ""), f"B{B} H{H} T{T} E{E} causal float32",
                run, values, torch_step, torch_device=tdev, rtol=2e-4, atol=2e-5, flops=flops,
                bytes=8 * n * 4)  # q, k, v, out; dout, dq, dk, dv (never the T x T matrix)


def long_case(device="cuda", quick=False) -> Case:
    return case(device, quick, long=True)


if __name__ == "__main__":
    main_for(case)
