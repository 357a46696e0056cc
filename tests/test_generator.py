"""``mg.Generator`` (PyTorch's ``torch.Generator``): its own stream for every random function,
sampler and the DataLoader; the same seed, the same numbers, whatever the global generator did."""

from __future__ import annotations

import pickle

import fake_cuda
import numpy as np
import pytest

import minigrad as mg
from minigrad.data import (
    DataLoader, RandomSampler, SubsetRandomSampler, TensorDataset, WeightedRandomSampler,
    random_split,
)

# each draw: (name, function of a generator) -> a NumPy array
DRAWS = {
    "rand": lambda g: mg.rand(2, 3, generator=g),
    "randn": lambda g: mg.randn(4, generator=g, dtype=mg.float64),
    "randint": lambda g: mg.randint(0, 100, (5,), generator=g),
    "randperm": lambda g: mg.randperm(9, generator=g),
    "rand_like": lambda g: mg.rand_like(mg.zeros(3), generator=g),
    "randn_like": lambda g: mg.randn_like(mg.zeros(3), generator=g),
    "bernoulli": lambda g: mg.bernoulli(mg.full((20,), 0.5), generator=g),
    "multinomial": lambda g: mg.multinomial(mg.tensor([1.0, 2.0, 3.0, 4.0]), 3, generator=g),
    "multinomial_replacement": lambda g: mg.tensor([[1.0, 2.0], [3.0, 1.0]]).multinomial(
        4, replacement=True, generator=g),
    "uniform_": lambda g: mg.zeros(6).uniform_(-2, 3, generator=g),
    "normal_": lambda g: mg.zeros(6).normal_(1.0, 0.5, generator=g),
    "init.uniform_": lambda g: mg.nn.init.uniform_(mg.empty(5), -1.0, 1.0, generator=g),
    "init.normal_": lambda g: mg.nn.init.normal_(mg.empty(5), 0.0, 2.0, generator=g),
    "init.xavier_uniform_": lambda g: mg.nn.init.xavier_uniform_(mg.empty(3, 4), generator=g),
    "init.xavier_normal_": lambda g: mg.nn.init.xavier_normal_(mg.empty(3, 4), generator=g),
    "init.kaiming_uniform_": lambda g: mg.nn.init.kaiming_uniform_(mg.empty(3, 4), a=5**0.5,
                                                                   generator=g),
    "init.kaiming_normal_": lambda g: mg.nn.init.kaiming_normal_(mg.empty(3, 4), generator=g),
    "init.trunc_normal_": lambda g: mg.nn.init.trunc_normal_(mg.empty(50), a=-0.5, b=0.5,
                                                             generator=g),
    "init.orthogonal_": lambda g: mg.nn.init.orthogonal_(mg.empty(3, 4), generator=g),
}
INIT_FUNCTIONS = [n.split(".")[1] for n in DRAWS if n.startswith("init.")]


@pytest.mark.parametrize("name", sorted(DRAWS))
def test_same_seed_same_numbers_whatever_the_global_generator_did(name):
    draw = DRAWS[name]
    mg.manual_seed(0)
    first = draw(mg.Generator().manual_seed(7)).numpy()
    mg.manual_seed(123)
    mg.rand(10)  # the global stream moves on; the generator's does not care
    second = draw(mg.Generator().manual_seed(7)).numpy()
    np.testing.assert_array_equal(first, second)
    third = draw(mg.Generator().manual_seed(8)).numpy()
    if name not in ("multinomial_replacement",):  # few outcomes: may repeat by chance
        assert not np.array_equal(first, third)


def test_generator_draws_leave_the_global_stream_alone():
    mg.manual_seed(5)
    expected = mg.rand(4).numpy()
    mg.manual_seed(5)
    g = mg.Generator().manual_seed(1)
    for draw in DRAWS.values():
        draw(g)
    np.testing.assert_array_equal(mg.rand(4).numpy(), expected)


def test_a_generator_is_a_stream_reseeding_restarts_it():
    g = mg.Generator().manual_seed(3)
    a, b = mg.rand(5, generator=g).numpy(), mg.rand(5, generator=g).numpy()
    assert not np.array_equal(a, b)
    g.manual_seed(3)
    np.testing.assert_array_equal(mg.rand(5, generator=g).numpy(), a)


def test_a_fresh_generator_has_pytorchs_default_seed():
    g = mg.Generator()
    assert g.initial_seed() == 67280421310721 and g.device == mg.device("cpu")
    np.testing.assert_array_equal(mg.rand(3, generator=mg.Generator()).numpy(),
                                  mg.rand(3, generator=g).numpy())


def test_manual_seed_returns_the_generator_and_wraps_negative_seeds():
    g = mg.Generator()
    assert g.manual_seed(-1) is g and g.initial_seed() == 2**64 - 1
    assert g.manual_seed(2**64 - 1).initial_seed() == 2**64 - 1
    assert g.manual_seed(np.int64(5)).initial_seed() == 5
    with pytest.raises(ValueError, match="64 bits"):
        g.manual_seed(2**64)
    with pytest.raises(RuntimeError, match="expected a long, but got float"):
        g.manual_seed(1.5)
    with pytest.raises(RuntimeError, match="expected a long, but got str"):
        g.manual_seed("3")


def test_seed_draws_a_fresh_seed_and_returns_it():
    g = mg.Generator()
    s = g.seed()
    assert isinstance(s, int) and 0 <= s < 2**63 and g.initial_seed() == s
    assert mg.Generator().seed() != s  # 63 random bits: equal only by a 2**-63 chance


def test_get_state_and_set_state_repeat_the_stream():
    g = mg.Generator().manual_seed(11)
    mg.randn(7, generator=g)
    g._rng.integers(0, 5, dtype=np.int32)  # leaves a buffered 32-bit half in PCG64's state
    state = g.get_state()
    assert state.dtype == mg.uint8 and state.shape == (48,)
    after = [mg.rand(3, generator=g).numpy(), g._rng.integers(0, 2**31, dtype=np.int32)]
    other = mg.Generator().manual_seed(99).set_state(state)
    assert other.initial_seed() == 11
    np.testing.assert_array_equal(mg.rand(3, generator=other).numpy(), after[0])
    assert other._rng.integers(0, 2**31, dtype=np.int32) == after[1]
    # the state survives mg.save / mg.load like any tensor
    g.set_state(state.clone())
    np.testing.assert_array_equal(mg.rand(3, generator=g).numpy(), after[0])


def test_set_state_refuses_what_get_state_did_not_make():
    g = mg.Generator()
    with pytest.raises(RuntimeError, match="size 48 .* size to be 3"):
        g.set_state(mg.zeros(3, dtype=mg.uint8))
    with pytest.raises(TypeError, match="uint8 Tensor"):
        g.set_state(mg.zeros(48))
    with pytest.raises(TypeError, match="uint8 Tensor"):
        g.set_state(np.zeros(48, np.uint8))


def test_generator_pickles_with_its_position():
    g = mg.Generator().manual_seed(4)
    mg.rand(2, generator=g)
    copy = pickle.loads(pickle.dumps(g))
    np.testing.assert_array_equal(mg.rand(3, generator=copy).numpy(),
                                  mg.rand(3, generator=g).numpy())


def test_not_a_generator_is_refused_clearly():
    with pytest.raises(TypeError, match="generator must be a minigrad.Generator, got int"):
        mg.rand(2, generator=3)
    with pytest.raises(TypeError, match="generator must be a minigrad.Generator, got int"):
        DataLoader(TensorDataset(np.arange(4)), shuffle=True, generator=3)


def test_cuda_generator_draws_on_its_device_only(monkeypatch):
    fake_cuda.use(monkeypatch, kernels="emulated")
    g = mg.Generator("cuda")
    assert g.device == mg.device("cuda:0")
    a = mg.rand(4, device="cuda", generator=g.manual_seed(2))
    assert a.is_cuda
    b = mg.rand(4, device="cuda", generator=g.manual_seed(2))
    np.testing.assert_array_equal(a.cpu().numpy(), b.cpu().numpy())
    with pytest.raises(RuntimeError, match="Expected a 'cpu' device type for generator but "
                                           "found 'cuda:0'"):
        mg.rand(4, generator=g)
    with pytest.raises(RuntimeError, match="Expected a 'cuda:0' device type for generator but "
                                           "found 'cpu'"):
        mg.randn(4, device="cuda", generator=mg.Generator())
    with pytest.raises(RuntimeError, match="'cpu' device type"):
        list(DataLoader(TensorDataset(np.arange(4)), shuffle=True, generator=g))
    with pytest.raises(NotImplementedError, match="manual_seed"):
        g.get_state()
    with pytest.raises(RuntimeError, match="NumPy Generator draws on the CPU, not on cuda:0"):
        mg.rand(2, device="cuda", generator=np.random.default_rng(0))


# ---------------------------------------------------------------------------- data


def _order(loader):
    return np.concatenate([b.numpy() for (b,) in loader]).tolist()


def test_dataloader_generator_gives_the_same_order_whatever_the_global_seed():
    ds = TensorDataset(np.arange(30))
    mg.manual_seed(0)
    first = _order(DataLoader(ds, batch_size=4, shuffle=True,
                              generator=mg.Generator().manual_seed(42)))
    mg.manual_seed(1)
    g = mg.Generator().manual_seed(42)
    loader = DataLoader(ds, batch_size=4, shuffle=True, generator=g)
    assert _order(loader) == first
    assert sorted(first) == list(range(30)) and first != list(range(30))
    assert _order(loader) != first  # the next epoch: the stream went on
    g.manual_seed(42)  # re-seeded after the loader was made: PyTorch's loader sees it too
    assert _order(loader) == first
    # the same stream as a RandomSampler given the same seed, as in PyTorch
    assert list(RandomSampler(ds, generator=mg.Generator().manual_seed(42))) == first


def test_dataloader_generator_with_workers_gives_the_main_process_order():
    ds = TensorDataset(np.arange(12))
    main = _order(DataLoader(ds, batch_size=5, shuffle=True,
                             generator=mg.Generator().manual_seed(9)))
    workers = _order(DataLoader(ds, batch_size=5, shuffle=True, num_workers=1,
                                generator=mg.Generator().manual_seed(9)))
    assert workers == main


def test_random_split_takes_a_generator_as_pytorch():
    ds = TensorDataset(np.arange(20))
    mg.manual_seed(0)
    a = random_split(ds, [0.75, 0.25], mg.Generator().manual_seed(42))
    mg.manual_seed(1)
    b = random_split(ds, [15, 5], generator=mg.Generator().manual_seed(42))
    assert [p.indices.tolist() for p in a] == [p.indices.tolist() for p in b]
    c = random_split(ds, [15, 5], generator=mg.Generator().manual_seed(43))
    assert a[0].indices.tolist() != c[0].indices.tolist()
    with pytest.raises(ValueError, match="a generator or a seed, not both"):
        random_split(ds, [15, 5], generator=mg.Generator(), seed=0)


@pytest.mark.parametrize("make", [
    lambda g: RandomSampler(range(10), generator=g),
    lambda g: RandomSampler(range(10), replacement=True, num_samples=15, generator=g),
    lambda g: SubsetRandomSampler([3, 5, 7, 9, 11], generator=g),
    lambda g: WeightedRandomSampler([0.1, 0.5, 0.2, 0.2], 12, generator=g),
])
def test_samplers_take_a_generator(make):
    mg.manual_seed(0)
    first = list(make(mg.Generator().manual_seed(5)))
    mg.manual_seed(1)
    assert list(make(mg.Generator().manual_seed(5))) == first
    draws = [list(make(mg.Generator().manual_seed(s))) for s in range(6, 10)]
    assert any(d != first for d in draws)


@pytest.mark.torch
@pytest.mark.parametrize("name", INIT_FUNCTIONS)
def test_init_functions_take_generator_where_pytorchs_do(name):
    torch = pytest.importorskip("torch")
    import inspect  # noqa: PLC0415

    theirs = inspect.signature(getattr(torch.nn.init, name)).parameters
    ours = inspect.signature(getattr(mg.nn.init, name)).parameters
    assert "generator" in theirs and list(ours) == list(theirs)


@pytest.mark.torch
def test_generator_api_as_pytorchs():
    torch = pytest.importorskip("torch")
    for seed in (0, -1, 2**63, 2**64 - 1):
        assert (mg.Generator().manual_seed(seed).initial_seed()
                == torch.Generator().manual_seed(seed).initial_seed())
    assert mg.Generator().initial_seed() == torch.Generator().initial_seed()
    # PyTorch-style code runs unchanged apart from the import
    for lib in (torch, mg):
        g = lib.Generator().manual_seed(0)
        ds = lib.utils.data.TensorDataset(lib.arange(10))
        parts = lib.utils.data.random_split(ds, [0.5, 0.5], generator=g)
        assert sorted(int(i) for p in parts for i in p.indices) == list(range(10))
        loader = lib.utils.data.DataLoader(ds, batch_size=3, shuffle=True, generator=g)
        assert sorted(int(v) for (b,) in loader for v in b.tolist()) == list(range(10))
