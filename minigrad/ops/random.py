"""Random streams and sampling ops: `Generator` (PyTorch's ``torch.Generator``), ``bernoulli``
and ``multinomial``. Samples have no gradient, as in PyTorch.

Every random function draws from its device's generator, which ``mg.manual_seed`` seeds, or,
given ``generator=``, from that `Generator`'s own stream, which neither ``mg.manual_seed`` nor
other draws touch.

The draws are made from uniform numbers with array maths, the same way on NumPy and CuPy:
a Bernoulli draw is ``u < p``; a categorical draw inverts the running sum of the weights;
a draw without replacement takes the largest ``log(u) / w`` keys (Efraimidis and Spirakis),
which picks items in the order sequential weighted sampling would.
"""

from __future__ import annotations

import operator
import os

import numpy as np

from minigrad import backend
from minigrad.tensor import Tensor

# the seed of a new torch.Generator (its initial_seed()), so that a fresh Generator repeats
_DEFAULT_SEED = 67280421310721
_STATE_BYTES = 48  # PCG64's 128-bit state and increment, its buffered 32 bits, the seed


class Generator:
    """A random stream of its own, as PyTorch's ``torch.Generator``: pass it as ``generator=``
    to the random functions, samplers and the `DataLoader`; the same seed gives the same
    numbers whatever ``mg.manual_seed`` and the other draws did.

    The numbers are minigrad's (NumPy's PCG64 on the CPU, CuPy's ``RandomState`` on a GPU), not
    PyTorch's Mersenne Twister, so a seed gives other numbers than in PyTorch.

    Args:
        device: the device it draws for (``'cpu'`` by default, as PyTorch); a random function
            given a generator of another device type raises, as in PyTorch.

    Example:
        >>> import minigrad as mg
        >>> g = mg.Generator().manual_seed(42)
        >>> a = mg.rand(3, generator=g)
        >>> mg.manual_seed(0); _ = mg.rand(5)      # the global generator does not matter
        >>> bool((a == mg.rand(3, generator=g.manual_seed(42))).all())
        True
        >>> g.initial_seed()
        42
    """

    def __init__(self, device="cpu") -> None:
        self.device = backend.get_device(device)
        self.manual_seed(_DEFAULT_SEED)

    def manual_seed(self, seed: int) -> "Generator":
        """Seeds the generator (an integer; negative ones wrap round to 64 bits, as in PyTorch)
        and returns it, so ``g = mg.Generator().manual_seed(0)`` works."""
        if isinstance(seed, bool) or not hasattr(seed, "__index__"):
            raise RuntimeError(f"manual_seed expected a long, but got {type(seed).__name__}")
        seed = operator.index(seed)
        if not -(2**63) <= seed < 2**64:
            raise ValueError(f"manual_seed: the seed {seed} does not fit 64 bits")
        self._seed = seed % 2**64
        self._rng = backend.new_generator(self.device, self._seed)
        return self

    def seed(self) -> int:
        """Seeds the generator from the operating system's entropy and returns that seed."""
        seed = int.from_bytes(os.urandom(8), "little") >> 1  # NOTE: 63 bits, as PyTorch's
        self.manual_seed(seed)
        return seed

    def initial_seed(self) -> int:
        """The seed the generator was last seeded with."""
        return self._seed

    def get_state(self) -> Tensor:
        """The generator's state as a uint8 Tensor, for `set_state` (CPU generators only)."""
        if self.device.type != "cpu":
            raise NotImplementedError(
                "get_state of a CUDA Generator: CuPy's RandomState does not expose its state; "
                "re-seed it with manual_seed to repeat its numbers")
        bit = self._rng.bit_generator.state
        words = [bit["state"]["state"], bit["state"]["inc"]]
        raw = b"".join(w.to_bytes(16, "little") for w in words)
        raw += int(bit["has_uint32"]).to_bytes(4, "little")
        raw += int(bit["uinteger"]).to_bytes(4, "little") + self._seed.to_bytes(8, "little")
        return Tensor._make(np.frombuffer(raw, dtype=np.uint8).copy())

    def set_state(self, new_state: Tensor) -> "Generator":
        """Puts back a state from `get_state` and returns the generator."""
        if self.device.type != "cpu":
            raise NotImplementedError("set_state of a CUDA Generator: see get_state")
        if not isinstance(new_state, Tensor) or new_state.dtype != np.uint8:
            raise TypeError("RNG state must be a minigrad uint8 Tensor (from get_state)")
        if new_state.numel() != _STATE_BYTES:
            raise RuntimeError(f"Expected a Generator state of size {_STATE_BYTES} but found "
                               f"the input RNG state size to be {new_state.numel()}")
        raw = backend.to_device(new_state.data, backend.CPU).tobytes()
        word = [int.from_bytes(raw[i : i + 16], "little") for i in (0, 16)]
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = {
            "bit_generator": "PCG64", "state": {"state": word[0], "inc": word[1]},
            "has_uint32": int.from_bytes(raw[32:36], "little"),
            "uinteger": int.from_bytes(raw[36:40], "little"),
        }
        self._rng, self._seed = rng, int.from_bytes(raw[40:48], "little")
        return self

    def _draws_for(self, device: backend.Device):
        """The NumPy/CuPy generator that draws for ``device`` (see `backend.generator`)."""
        if device.type != self.device.type or (
            device.type != "cpu" and device.index != self.device.index
        ):
            raise RuntimeError(f"Expected a '{device}' device type for generator but found "
                               f"'{self.device}'")
        return self._rng

    def __repr__(self) -> str:
        return f"<minigrad.Generator device={self.device} initial_seed={self._seed}>"


def bernoulli(input: Tensor, p=None, *, generator=None) -> Tensor:  # noqa: A002
    """0/1 draws, 1 with probability ``input`` (or ``p``) elementwise, in ``input``'s dtype.

    Example:
        >>> import minigrad as mg
        >>> mg.bernoulli(mg.tensor([0.0, 1.0]))
        tensor([0., 1.])
    """
    probs = input.data if p is None else input.xp.full(input.shape, p, dtype=input.dtype)
    if probs.size and (float(probs.min()) < 0 or float(probs.max()) > 1):
        raise RuntimeError("bernoulli: all probabilities must be in [0, 1]")
    dtype = input.dtype if input.dtype.kind == "f" else np.dtype(np.float32)
    u = backend.random_uniform(input.device, input.shape, dtype, generator=generator)
    return Tensor._make((u < probs).astype(input.dtype))


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *,  # noqa: A002
                generator=None) -> Tensor:
    """Indices drawn from the categories whose (unnormalised) weights are the last dimension
    of ``input`` (1-D or 2-D), ``num_samples`` per row; int64.

    Without ``replacement`` each index appears at most once in a row, so ``num_samples`` is at
    most the number of non-zero weights.

    Example:
        >>> import minigrad as mg
        >>> mg.multinomial(mg.tensor([0.0, 0.0, 1.0]), 2, replacement=True)
        tensor([2, 2])
    """
    if input.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got {input.ndim}")
    xp = input.xp
    w = input.data.astype(np.float64) if input.dtype != np.float64 else input.data
    rows = w.reshape(-1, w.shape[-1])
    if rows.size and (not bool(xp.isfinite(rows).all()) or float(rows.min()) < 0):
        raise RuntimeError("multinomial: probability tensor contains either inf, nan or "
                           "element < 0")
    totals = rows.sum(axis=1, keepdims=True)
    if rows.shape[0] and float(totals.min()) <= 0:
        raise RuntimeError("multinomial: invalid multinomial distribution (sum of probabilities "
                           "<= 0)")
    n_cat = rows.shape[1]
    if not replacement:
        nonzero = int((rows > 0).sum(axis=1).min()) if rows.shape[0] else n_cat
        if num_samples > nonzero:
            raise RuntimeError("multinomial: cannot sample n_sample > prob_dist.size(-1) "
                               "samples without replacement")
    u = backend.random_uniform(input.device, (rows.shape[0], num_samples if replacement
                                              else n_cat), np.float64, generator=generator)
    if replacement:
        cdf = xp.cumsum(rows / totals, axis=1)
        cdf[:, -1] = 1.0  # the last bin closes at exactly 1 despite rounding
        # every row searched at once: row r's bins are shifted to [r, r + 1]
        shift = xp.arange(rows.shape[0], dtype=np.float64)[:, None]
        flat = xp.searchsorted((cdf + shift).ravel(), (u + shift).ravel(), side="right")
        idx = flat.reshape(u.shape) - (shift * n_cat).astype(np.int64)
        idx = xp.minimum(idx, n_cat - 1)
    else:
        # NOTE: zero weights get key -inf, so they are never picked while others remain
        with np.errstate(divide="ignore"):
            keys = xp.where(rows > 0, xp.log(u) / xp.where(rows > 0, rows, 1), -xp.inf)
        idx = xp.argsort(-keys, axis=1, kind="stable")[:, :num_samples]
    idx = idx.astype(np.int64)
    return Tensor._make(idx.reshape(input.shape[:-1] + (num_samples,)))
