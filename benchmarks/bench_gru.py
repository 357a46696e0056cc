"""Fused GRU layer vs its composite and PyTorch: W3's layer (input 128, hidden 256, T 64,
batch 32), forward + backward through the ``nn.GRU`` module. ``python -m benchmarks.bench_gru``"""

from benchmarks.bench_rnn import rnn_case
from benchmarks.kernel_bench import main_for


def case(device="cpu", quick=False):
    return rnn_case("gru", device, quick)


if __name__ == "__main__":
    main_for(case)
