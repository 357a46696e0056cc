"""Toy tasks the sequence layers learn: a check that LSTM, GRU and attention really learn.

1. **Addition** (LSTM and GRU): two 8-bit numbers arrive as a sequence of bit pairs, least
   significant bit first; at each step the network outputs the bit of the sum. It must learn to
   carry. Accuracy = fraction of test sums with every bit right.
2. **Copy** (causal transformer): the input is ``x_1 .. x_n SEP x_1 .. x_n``; with a causal mask
   the model predicts each token of the second half from the first. It must learn to attend n+1
   positions back. Accuracy = fraction of copied tokens right.

Run: ``python examples/toy_tasks.py`` (prints a table; about a minute on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn


def addition_batch(rng, batch: int, bits: int = 8):
    """Inputs (B, T, 2) of bit pairs and targets (B, T) of sum bits, LSB first, T = bits + 1."""
    a = rng.integers(0, 2**bits, batch)
    b = rng.integers(0, 2**bits, batch)
    s = a + b
    t = np.arange(bits + 1)
    x = np.stack([(a[:, None] >> t) & 1, (b[:, None] >> t) & 1], axis=-1).astype(np.float32)
    y = ((s[:, None] >> t) & 1).astype(np.int64)
    return mg.tensor(x), mg.tensor(y)


class Adder(nn.Module):
    def __init__(self, cell: str, hidden: int = 24):
        super().__init__()
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(2, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 2)

    def forward(self, x):
        out, _ = self.rnn(x)  # (B, T, H)
        return self.head(out)  # (B, T, 2)


def train_adder(cell: str, steps: int, seed: int = 0):
    mg.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Adder(cell)
    opt = mg.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        x, y = addition_batch(rng, 64)
        opt.zero_grad()
        loss = F.cross_entropy(model(x).reshape(-1, 2), y.reshape(-1))
        loss.backward()
        opt.step()
    x, y = addition_batch(np.random.default_rng(seed + 1000), 1000)
    with mg.no_grad():
        pred = model(x).argmax(dim=-1)
    return float((pred == y).all(dim=1).numpy().mean()), float(loss.item())


def copy_batch(rng, batch: int, n: int = 8, vocab: int = 10):
    """Tokens (B, 2n+1): n random digits, SEP (= vocab), the same digits again."""
    seq = rng.integers(0, vocab, (batch, n))
    sep = np.full((batch, 1), vocab)
    return mg.tensor(np.concatenate([seq, sep, seq], axis=1))


class Copier(nn.Module):
    def __init__(self, vocab: int = 11, length: int = 17, d: int = 64, heads: int = 4,
                 layers: int = 2):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(length, d)
        self.blocks = nn.ModuleList(
            [nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, batch_first=True,
                                        norm_first=True) for _ in range(layers)])
        self.head = nn.Linear(d, vocab)

    def forward(self, idx):
        T = idx.shape[1]
        h = self.tok(idx) + self.pos(mg.arange(T))  # (B, T, d)
        mask = mg.triu(mg.full((T, T), float("-inf")), diagonal=1)  # causal
        for block in self.blocks:
            h = block(h, src_mask=mask, is_causal=True)
        return self.head(h)  # (B, T, vocab)


def train_copier(steps: int, seed: int = 0, n: int = 8):
    mg.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Copier(length=2 * n + 1)
    opt = mg.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        idx = copy_batch(rng, 32, n)
        opt.zero_grad()
        logits = model(idx[:, :-1])  # predict token t+1 from tokens <= t
        # only the copied half is predictable: positions n .. 2n-1 predict tokens n+1 .. 2n
        loss = F.cross_entropy(logits[:, n:].reshape(-1, 11), idx[:, n + 1:].reshape(-1))
        loss.backward()
        opt.step()
    idx = copy_batch(np.random.default_rng(seed + 1000), 500, n)
    with mg.no_grad():
        pred = model(idx[:, :-1])[:, n:].argmax(dim=-1)
    return float((pred == idx[:, n + 1:]).numpy().mean()), float(loss.item())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    args = parser.parse_args(argv)
    rows = []
    for cell in ("lstm", "gru"):
        t0 = time.perf_counter()
        acc, loss = train_adder(cell, args.steps)
        rows.append((f"{cell.upper()} adds two 8-bit numbers", acc, loss,
                     time.perf_counter() - t0))
    t0 = time.perf_counter()
    acc, loss = train_copier(args.steps)
    rows.append(("causal transformer copies 8 tokens", acc, loss, time.perf_counter() - t0))
    print(f"| task | test accuracy | final loss | seconds ({args.steps} steps) |")
    print("|---|---|---|---|")
    for name, acc, loss, sec in rows:
        print(f"| {name} | {acc:.1%} | {loss:.4f} | {sec:.1f} |")


if __name__ == "__main__":
    main()
