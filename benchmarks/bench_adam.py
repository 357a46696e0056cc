"""Fused multi-tensor Adam vs the per-parameter reference and PyTorch, on the parameter shapes
of W4's model (16 tensors, 1.3 M values). ``python -m benchmarks.bench_adam``

The fused update equals the reference to rounding: on the CPU it folds two constants and walks
the group in segments (no faster than the reference on these large tensors: see
``kernels/adam.py`` for why), on a GPU it is one kernel."""

import numpy as np

import minigrad as mg
from benchmarks.kernel_bench import Case, cpu, main_for, torch_for
from minigrad.nn import Parameter

SHAPES = [(1000, 256), (768, 256), (768,), (256, 256), (256,), (1024, 256), (1024,),
          (256, 1024), (256,), (256,), (256,), (256,), (256,), (1000, 256), (1000,), (256,)]


# Many small tensors (biases, norms, LoRA factors): where a multi-tensor update saves the
# per-parameter loop's per-call overhead
MANY_SHAPES = [(64,)] * 200


def many_case(device="cpu", quick=False) -> Case:
    return case(device, quick, shapes=MANY_SHAPES, name="adam_many")


def case(device="cpu", quick=False, shapes=None, name="adam") -> Case:
    shapes = SHAPES if shapes is None else shapes
    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    grads = [rng.standard_normal(s, dtype=np.float32) * 1e-2 for s in shapes]

    def make():
        ps = [Parameter(mg.tensor(w, device=device)) for w in init]
        for p, g in zip(ps, grads):
            p.grad = mg.tensor(g, device=device)
        return ps, mg.optim.Adam(ps, lr=1e-3)

    params, opt = make()

    def values():
        ps, o = make()
        for _ in range(3):
            o.step()
        return [cpu(p) for p in ps]

    torch, tdev = torch_for(device)
    torch_step, variants = None, {}
    if torch is not None:
        def torch_adam(**options):
            tps = [torch.nn.Parameter(torch.tensor(w, device=tdev)) for w in init]
            for p, g in zip(tps, grads):
                p.grad = torch.tensor(g, device=tdev)
            return torch.optim.Adam(tps, lr=1e-3, **options).step

        torch_step = torch_adam()  # PyTorch's default (foreach on a GPU, a loop on the CPU)
        # its compiled one-pass update: the least a fused kernel's time can be on this device,
        # so "composite / it" bounds the speed-up any fused kernel could show here
        variants = {"fused=True": torch_adam(fused=True)}

    n = sum(int(np.prod(s)) for s in shapes)
    size = f"{n / 1e6:.2f} M" if n >= 1e5 else f"{n / 1e3:.1f} K"
    return Case(name, f"{len(shapes)} tensors, {size} float32", opt.step, values,
                torch_step, torch_device=tdev, rtol=1e-5, atol=1e-7, torch_variants=variants,
                bytes=7 * n * 4)  # read p, g, m, v; write p, m, v


if __name__ == "__main__":
    main_for(case)
