"""The recurrent-layer case shared by bench_lstm.py and bench_gru.py."""

import numpy as np

import minigrad as mg
from benchmarks.kernel_bench import Case, cpu, torch_for


def rnn_case(kind: str, device="cpu", quick=False) -> Case:
    T, B, n_in, H = 64, 32, 128, 256
    gates = 4 if kind == "lstm" else 3
    mg.manual_seed(0)
    cls = mg.nn.LSTM if kind == "lstm" else mg.nn.GRU
    model = cls(n_in, H).to(device)
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((T, B, n_in), dtype=np.float32)
    gy_np = rng.standard_normal((T, B, H), dtype=np.float32)
    x = mg.tensor(x_np, device=device, requires_grad=True)
    gy = mg.tensor(gy_np, device=device)
    params = list(model.parameters())

    def run():
        out = model(x)[0]
        return out, mg.grad(out, [x] + params, gy)

    def values():
        out, gs = run()
        return [cpu(out)] + [cpu(g) for g in gs]

    torch, tdev = torch_for(device)
    torch_step = None
    if torch is not None:
        tmodel = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(n_in, H).to(tdev)
        tmodel.load_state_dict({k: torch.tensor(np.asarray(cpu(v)))
                                for k, v in model.state_dict().items()})
        tx = torch.tensor(x_np, device=tdev, requires_grad=True)
        tgy = torch.tensor(gy_np, device=tdev)

        def torch_step():
            out = tmodel(tx)[0]
            torch.autograd.grad(out, [tx] + list(tmodel.parameters()), tgy)

    # GEMM work: input projection fwd + 2 bwd, recurrent fwd + 2 bwd, per step
    flops = 2 * T * B * gates * H * (n_in + H) * 3
    return Case(kind, f"T{T} B{B} {n_in}->{H} float32", run, values, torch_step, torch_device=tdev,
                rtol=2e-4, atol=2e-5, flops=flops)
