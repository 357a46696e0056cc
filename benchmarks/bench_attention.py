"""Fused attention vs its composite and PyTorch's scaled_dot_product_attention: W4's causal
self-attention (batch 16, 4 heads, T 128, head dim 64), and T = 1024 (batch 1, 4 heads: the
NumPy kernel skips the masked key blocks there); on a GPU also T = 4096
(batch 1, 16 heads), forward + backward and forward alone, where the flash kernel's memory
traffic, FLOP rate and share of the roofline are reported.
``python -m benchmarks.bench_attention``"""

import numpy as np

import minigrad as mg
from benchmarks.kernel_bench import Case, cpu, main_for, torch_for
from minigrad.nn.attention import scaled_dot_product_attention as sdpa


def case(device="cpu", quick=False, long=False, forward_only=False, shape=None) -> Case:
    B, H, T, E = shape or ((1, 16, 4096, 64) if long else (16, 4, 128, 64))
    rng = np.random.default_rng(0)
    q_np, k_np, v_np, gy_np = (rng.standard_normal((B, H, T, E), dtype=np.float32)
                               for _ in range(4))
    q, k, v = (mg.tensor(a, device=device, requires_grad=True) for a in (q_np, k_np, v_np))
    gy = mg.tensor(gy_np, device=device)

    def run():
        out = sdpa(q, k, v, is_causal=True)
        if forward_only:
            return out
        return out, mg.grad(out, [q, k, v], gy)

    def values():
        if forward_only:
            return [cpu(run())]
        out, gs = run()
        return [cpu(out)] + [cpu(g) for g in gs]

    torch, tdev = torch_for(device)
    torch_step = None
    if torch is not None:
        tq, tk, tv = (torch.tensor(a, device=tdev, requires_grad=True) for a in (q_np, k_np, v_np))
        tgy = torch.tensor(gy_np, device=tdev)

        def torch_step():
            out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
            if not forward_only:
                torch.autograd.grad(out, [tq, tk, tv], tgy)

    n = B * H * T * E
    if forward_only:  # causal: half of the 2 * 2 * T * T * E FLOPs; reads q, k, v, writes out
        flops, traffic, what = 2 * B * H * T * T * E, 4 * n * 4, " forward"
    else:  # the backward does 2.5x the forward's FLOPs; adds dout, dq, dk, dv
        flops, traffic, what = 3.5 * 2 * B * H * T * T * E, 8 * n * 4, ""
    name = "attention" + (f"_T{T}" if T != 128 else "") + ("_fwd" if forward_only else "")
    return Case(name, f"B{B} H{H} T{T} E{E} causal float32{what}", run, values, torch_step,
                torch_device=tdev, rtol=2e-4, atol=2e-5, flops=flops,
                bytes=traffic)  # never the T x T matrix


def mid_case(device="cpu", quick=False) -> Case:
    """T = 1024 (batch 1, 4 heads): where the NumPy kernel skips the masked key blocks."""
    return case(device, quick, shape=(1, 4, 1024, 64))


def long_case(device="cuda", quick=False) -> Case:
    return case(device, quick, long=True)


def long_forward_case(device="cuda", quick=False) -> Case:
    return case(device, quick, long=True, forward_only=True)


if __name__ == "__main__":
    main_for(case)
