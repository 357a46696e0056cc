"""The CUDA C of every fused kernel, executed on the CPU, compared with the NumPy branches.

The fake CuPy (tests/fake_cuda) with simulated kernels: tests/kernels/cuda_sim.py compiles
each ``kernels/*.cu`` with g++ against a small CUDA header (blocks one at a time, the threads
of a block as real threads with barriers and warp shuffles), and the real launchers
(``_forward_cuda`` / ``_backward_cuda``) run it, as ``_cuda.kernel`` compiles and looks it up
with CuPy, each launch checked against the kernel's signature. So these tests catch bugs in the
CUDA C itself (indexing, reductions, barriers, masks, numerics) without a GPU;
test_cuda_launchers.py runs the launchers on the same fake CuPy with the kernels' maths in
NumPy, and the ``gpu`` tests run the same code on a GPU.

Sizes are small but not multiples of the block size, with several blocks, and the simulated
device reports one SM, so that the grid-stride loops (at most 32 blocks per SM) wrap around.
Skipped when g++ cannot compile C++20.
"""

import re

import fake_cuda
import numpy as np
import pytest
from cuda_emulation import _keep
from cuda_sim import SimulatedKernel, SimulationError, unavailable_reason
from fake_cuda import _kernels
from fake_cuda._kernels import LAUNCHES
from fake_cuda.cupy import asnumpy
from test_cuda_launchers import _mask, _node

import minigrad as mg
from minigrad import kernels
from minigrad.tensor import Tensor

DTYPES = [np.float64, np.float32]
# atol is relative to the largest expected value (see _close); float32 allows for the
# saturated attention case, whose gradients amplify the rounding of its scores by ~100
TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-4, atol=5e-5)}


@pytest.fixture(scope="session")
def compiler():
    """The fake CuPy's compiler of simulated kernels (skips without a C++20 g++)."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    return _kernels.compiler()


@pytest.fixture
def sim(monkeypatch, compiler):
    """The fake cupy module whose kernels are the CUDA C, simulated on a one-SM device."""
    return fake_cuda.use(monkeypatch, kernels="simulated", sm_count=1)


def _close(expected, actual, dtype, what=""):
    """Compare tuples (or single arrays) of results; None must match None. The absolute
    tolerance scales with the largest expected value (sums that cancel lose digits relative
    to their terms, not to their result)."""
    pairs = zip(expected, actual) if isinstance(expected, tuple) else [(expected, actual)]
    for k, (e, a) in enumerate(pairs):
        if e is None or a is None:
            assert e is None and a is None, f"{what} result {k}: {e} vs {a}"
            continue
        e, a = asnumpy(e), asnumpy(a)
        assert a.dtype == np.dtype(dtype), f"{what} result {k}: dtype {a.dtype}"
        finite = np.abs(e[np.isfinite(e)])
        scale = max(1.0, float(finite.max())) if finite.size else 1.0
        np.testing.assert_allclose(
            a,
            e,
            rtol=TOL[dtype]["rtol"],
            atol=TOL[dtype]["atol"] * scale,
            err_msg=f"{what} result {k}",
        )


def _rng_arrays(rng, dtype, *shapes):
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


# ---------------------------------------------------------------------------- elementwise


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("n", [37, 9001])  # one partial block; past the 32 blocks of the grid
def test_gelu(sim, dtype, approximate, n):
    x = np.concatenate([np.linspace(-9, 9, n - 2), [-1e4, 1e4]]).astype(dtype)
    ref = _node(kernels.gelu.FusedGeluFn, np, [x])
    node = _node(kernels.gelu.FusedGeluFn, sim, [sim.asarray(x)])
    _close(
        ref.forward(x, approximate=approximate),
        node.forward(node.inputs[0].data, approximate=approximate),
        dtype,
        "y",
    )
    gy = np.cos(x)
    with mg.no_grad():
        _close(
            ref.backward(Tensor._make(gy)).data,
            node.backward(Tensor._make(sim.asarray(gy))).data,
            dtype,
            "gx",
        )
    assert LAUNCHES == ["gelu_fwd", "gelu_bwd"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.0, 0.3, 0.9])
@pytest.mark.parametrize("shape", [(37,), (90, 101)])
def test_dropout(sim, monkeypatch, dtype, p, shape):
    """The kept elements are Philox-4x32-10's (the NumPy emulation, checked against Random123's
    known answers in test_cuda_launchers.py), scaled by 1 / (1 - p); the backward regenerates
    the same mask from the seed."""
    seed = np.array([12345, 678], dtype=np.int64)

    class Generator:
        def randint(self, low, high, size, dtype):
            assert (low, high, size) == (0, 2**31 - 1, 2)
            return sim.asarray(seed.astype(dtype))

    monkeypatch.setattr(kernels.dropout.backend, "generator", lambda device: Generator())
    rng = np.random.default_rng(4)
    x = (rng.random(shape) + 1).astype(dtype)
    node = _node(kernels.dropout.DropoutFn, sim, [sim.asarray(x)])
    y = asnumpy(node.forward(node.inputs[0].data, p=p))
    keep = _keep(x.size, seed, p).reshape(shape)
    scale = dtype(1 / (1 - p))
    np.testing.assert_array_equal(y, np.where(keep, x * scale, 0))
    if x.size > 1000:
        assert abs(keep.mean() - (1 - p)) < 0.02
    gy = rng.standard_normal(shape).astype(dtype)
    with mg.no_grad():
        gx = asnumpy(node.backward(Tensor._make(sim.asarray(gy))).data)
    np.testing.assert_array_equal(gx, np.where(keep, gy * scale, 0))


# ---------------------------------------------------------------------------- row kernels


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", [(True, True), (True, False), (False, False)])
@pytest.mark.parametrize("shape", [(4, 3, 7), (3, 2, 45), (6, 300)])  # blocks of 32, 64, 256
def test_layer_norm(sim, dtype, affine, shape):
    rng = np.random.default_rng(3)
    D = shape[-1]
    x = rng.standard_normal(shape) * 5 + 2
    x.reshape(-1, D)[0] += 1e3  # a row with a large mean: the two-pass variance keeps it
    wb = [rng.standard_normal(D) for flag in affine if flag]
    arrays = [a.astype(dtype) for a in [x] + wb]
    params = dict(n_dims=1, has_weight=affine[0], has_bias=affine[1], eps=1e-5)
    ref = _node(kernels.layer_norm.LayerNormFn, np, arrays)
    node = _node(kernels.layer_norm.LayerNormFn, sim, [sim.asarray(a) for a in arrays])
    _close(
        ref.forward(*arrays, **params),
        node.forward(*[t.data for t in node.inputs], **params),
        dtype,
        "y",
    )
    gy = rng.standard_normal(shape).astype(dtype)
    with mg.no_grad():
        g_ref = ref.backward(Tensor._make(gy))
        g_sim = node.backward(Tensor._make(sim.asarray(gy)))
    _close(tuple(g.data for g in g_ref), tuple(g.data for g in g_sim), dtype, "grads")
    assert LAUNCHES == [
        "layer_norm_fwd",
        "layer_norm_bwd_dx",
        "layer_norm_bwd_dwdb",
    ]


XENT_OPTIONS = {
    "mean": dict(),
    "sum_ignore": dict(reduction="sum", ignore_index=2),
    "smooth_weight_ignore": dict(
        label_smoothing=0.2, weight=True, ignore_index=1, reduction="none"
    ),
    "smooth_mean": dict(label_smoothing=0.1),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", list(XENT_OPTIONS), ids=str)
@pytest.mark.parametrize("shape", [(7, 5), (3, 300)])  # blocks of 32 and 256 threads
def test_softmax_cross_entropy(sim, dtype, options, shape):
    options = XENT_OPTIONS[options]
    rng = np.random.default_rng(2)
    N, C = shape
    x = rng.standard_normal(shape) * 3
    x[1] *= 1e4  # extreme logits stay finite
    x = x.astype(dtype)
    t = rng.integers(0, C, N)
    t[0] = options.get("ignore_index", 0)
    w = (rng.random(C) + 0.1).astype(dtype) if options.get("weight") else None
    params = dict(
        ignore_index=options.get("ignore_index", -100),
        reduction=options.get("reduction", "mean"),
        label_smoothing=options.get("label_smoothing", 0.0),
    )
    cls = kernels.softmax_cross_entropy.SoftmaxCrossEntropyFn
    ref = _node(cls, np, [x])
    node = _node(cls, sim, [sim.asarray(x)])
    out_ref = ref.forward(
        x, target=Tensor._make(t), weight=None if w is None else Tensor._make(w), **params
    )
    out_sim = node.forward(
        node.inputs[0].data,
        target=Tensor._make(sim.asarray(t)),
        weight=None if w is None else Tensor._make(sim.asarray(w)),
        **params,
    )
    _close(out_ref, out_sim, dtype, "loss")
    gy = np.asarray(rng.random(np.shape(out_ref)), dtype=dtype)
    with mg.no_grad():
        g_ref = ref.backward(Tensor._make(gy)).data
        g_sim = node.backward(Tensor._make(sim.asarray(gy))).data
    _close(g_ref, g_sim, dtype, "gx")
    assert LAUNCHES == ["softmax_xent_fwd", "softmax_xent_bwd"]


# ---------------------------------------------------------------------------- optimizer

ADAM_OPTIONS = {
    "plain": dict(),
    "amsgrad_wd_maximize": dict(weight_decay=0.1, amsgrad=True, maximize=True),
    "adamw": dict(weight_decay=0.1, decoupled_weight_decay=True),
    "maximize": dict(maximize=True),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", list(ADAM_OPTIONS), ids=str)
def test_adam(sim, dtype, options):
    """One multi-tensor step over parameters of odd sizes (9118 values: the grid-stride loop
    wraps), through the pointer tables; the NumPy branch updates copies of the same state."""
    group = dict(
        lr=0.01,
        betas=(0.9, 0.99),
        eps=1e-8,
        weight_decay=0.0,
        amsgrad=False,
        maximize=False,
        decoupled_weight_decay=False,
    )
    group.update(ADAM_OPTIONS[options])
    shapes = [(3, 4), (5,), (1,), (70, 130)]
    results = []
    for xp, wrap in ((np, np.asarray), (sim, sim.asarray)):
        rng = np.random.default_rng(6)
        params, state = [], {}
        for s in shapes:
            p = Tensor._make(wrap(rng.standard_normal(s).astype(dtype)))
            p.grad = Tensor._make(wrap(rng.standard_normal(s).astype(dtype)))
            params.append(p)
            names = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if group["amsgrad"] else [])
            state[p] = {n: Tensor._make(wrap(rng.random(s).astype(dtype))) for n in names}
        flat = kernels.adam._FlatMoments(xp, state, params, group["amsgrad"])
        kernels.adam._update(flat, params, 3.0, group)
        results.append(
            tuple(asnumpy(t.data) for p in params for t in [p] + list(state[p].values()))
        )
    _close(results[0], results[1], dtype, "parameters and moments")
    assert LAUNCHES == ["adam_multi_tensor"]


# ---------------------------------------------------------------------------- recurrences

RNN = {"lstm": (kernels.lstm.LSTMFn, 4, 2), "gru": (kernels.gru.GRUFn, 3, 1)}  # gates, states


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, [4, 1, 0]])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kind", list(RNN))
def test_rnn(sim, kind, bias, lengths, reverse, dtype):
    """A whole layer, forward and backward through time (B * H = 300: two blocks per step),
    with padded steps (lengths) and gates saturated by pre-activations of 1e4."""
    cls, gates, n_states = RNN[kind]
    rng = np.random.default_rng(1)
    T, B, H = 4, 3, 100
    arrays = _rng_arrays(
        rng,
        dtype,
        (T, B, gates * H),
        *[(B, H)] * n_states,
        (gates * H, H),
        *([(gates * H,)] if bias else []),
    )
    arrays[0][0, 0] *= 1e4  # saturated gates stay finite
    arrays[n_states + 1] /= np.sqrt(H).astype(dtype)
    ref = _node(cls, np, arrays)
    node = _node(cls, sim, [sim.asarray(a) for a in arrays])
    masks = [None, None] if lengths is None else [_mask(lengths, T, xp) for xp in (np, sim)]
    out_ref = ref.forward(*arrays, mask=masks[0], reverse=reverse)
    out_sim = node.forward(*[t.data for t in node.inputs], mask=masks[1], reverse=reverse)
    _close(out_ref, out_sim, dtype, "outputs")
    gys = tuple(rng.standard_normal(o.shape).astype(dtype) for o in out_ref)
    g_sim = node._backward_cuda(*[sim.asarray(g) for g in gys])
    _close(ref._backward_numpy(*gys), g_sim, dtype, "gradients")
    steps = [f"{kind}_step_fwd"] * T + [f"{kind}_step_bwd"] * T
    assert LAUNCHES == steps


# ---------------------------------------------------------------------------- attention


def _attention_mask(kind, rng, B, L, S, dtype):
    """The mask of a kind, None for "none" and "causal"; the bool and float masks have query
    rows whose keys are all masked (their output is 0)."""
    if kind == "bool":  # (L, S), broadcast over the batch and heads; row 5 dead
        return (rng.random((L, S)) > 0.3) & (np.arange(L) != 5)[:, None]
    if kind == "padding":  # (B, 1, 1, S): the second sequence's last 7 keys are padding
        return (np.arange(S) < np.array([S, S - 7])[:, None])[:, None, None, :]
    if kind == "float":  # (B, 1, L, S), added to the scores; -inf masks
        mask = rng.standard_normal((B, 1, L, S)).astype(dtype)
        mask[0, 0, 3, :] = mask[1, 0, :, 2] = -np.inf  # a dead row, a masked key
        return mask
    return None


ATTENTION_DIMS = {"small": (8, 5, 0.37), "dmax128": (72, 96, 0.1), "saturated": (8, 5, 30.0)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dims", list(ATTENTION_DIMS), ids=str)
@pytest.mark.parametrize("kind", ["none", "causal", "bool", "padding", "float"])
def test_attention(sim, kind, dims, dtype):
    """L = 70 queries, S = 66 keys (two blocks of 64 rows; tiles of 64 or 32), masks with
    dead rows; head dims over 64 use the DMAX = 128 kernels."""
    E, Ev, scale = ATTENTION_DIMS[dims]
    rng = np.random.default_rng(5)
    B, H, L, S = 2, 3, 70, 66
    q, k, v = _rng_arrays(rng, dtype, (B, H, L, E), (B, H, S, E), (B, H, S, Ev))
    mask = _attention_mask(kind, rng, B, L, S, dtype)
    params = dict(is_causal=kind == "causal", scale=scale)
    ref = _node(kernels.attention.AttentionFn, np, [q, k, v])
    out_ref = ref.forward(q, k, v, mask=None if mask is None else Tensor._make(mask), **params)
    node = _node(kernels.attention.AttentionFn, sim, [sim.asarray(a) for a in (q, k, v)])
    out_sim = node.forward(
        *[t.data for t in node.inputs],
        mask=None if mask is None else Tensor._make(sim.asarray(mask)),
        **params,
    )
    _close(out_ref, out_sim, dtype, "out")
    gy = rng.standard_normal(out_ref.shape).astype(dtype)
    _close(ref._backward_numpy(gy), node._backward_cuda(sim.asarray(gy)), dtype, "dq, dk, dv")
    assert LAUNCHES == [
        "flash_attn_fwd",
        "flash_attn_bwd_dq",
        "flash_attn_bwd_dkdv",
    ]


# ---------------------------------------------------------------------------- the simulator

SELF_TEST = r"""
template <typename T>
__global__ void reverse_blocks(const T* __restrict__ x, T* __restrict__ y, int n) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* tile = reinterpret_cast<T*>(smem_raw);
  __shared__ int size;
  const int t = threadIdx.x + blockDim.x * threadIdx.y;
  if (t == 0) size = blockDim.x * blockDim.y;
  __syncthreads();
  const int i = blockIdx.x * size + t;
  tile[t] = i < n ? x[i] : T(0);
  __syncthreads();
  const int j = blockIdx.x * size + size - 1 - t;
  if (j < n) y[j] = tile[t];
}

template <typename T>
__global__ void warp_shuffles(const T* __restrict__ x, T* __restrict__ y) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  T v = x[i];
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  y[4 * i] = v;                                                  // the warp's sum
  y[4 * i + 1] = __shfl_down_sync(0xffffffffu, x[i], 1);          // the next lane's value
  y[4 * i + 2] = __shfl_up_sync(0xffffffffu, x[i], 3, 16);        // 3 lanes up, in 16s
  y[4 * i + 3] = __shfl_sync(0xffffffffu, x[i], 5, 8);            // lane 5 of each 8
}

template <typename T>
__global__ void divergent_barriers(T* __restrict__ y) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  y[threadIdx.x] = T(1);
}

template <typename T>
__global__ void barrier_against_shuffle(T* __restrict__ y) {
  if (threadIdx.x == 0) __syncthreads();
  else y[0] = __shfl_xor_sync(0x3u, y[0], 1);
}

template <typename T>
__global__ void misaligned_vector(T* __restrict__ y) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  float* f = reinterpret_cast<float*>(smem_raw);
  f[threadIdx.x] = float(threadIdx.x);
  __syncthreads();
  const float4 v = *reinterpret_cast<const float4*>(f + 4 * (threadIdx.x / 4) + 1);  // 4 bytes off
  y[threadIdx.x] = T(v.x);
}

template <typename T>
__global__ void write_past_shared(T* __restrict__ y) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  reinterpret_cast<T*>(smem_raw)[threadIdx.x] = T(threadIdx.x);
  y[threadIdx.x] = T(threadIdx.x);
}
"""


def _self_test_kernel(sim, which):
    module = sim.RawModule(
        code=SELF_TEST,
        options=("-std=c++17",),
        name_expressions=[
            f"{k}<double>"
            for k in (
                "reverse_blocks",
                "warp_shuffles",
                "divergent_barriers",
                "barrier_against_shuffle",
                "write_past_shared",
                "misaligned_vector",
            )
        ],
    )
    return module.get_function(f"{which}<double>")


@pytest.mark.parametrize("block", [(1024,), (32, 3), (33,)])
def test_simulator_blocks_and_shared_memory(sim, block):
    """Dynamic and static shared memory, a barrier, 2-D and full (1024-thread) blocks, a last
    block only partly filled: each block reverses its part of x through shared memory."""
    size = int(np.prod(block))
    n = 2 * size + 5
    x = np.arange(n, dtype=np.float64)
    y = sim.full(n, -1.0)
    _self_test_kernel(sim, "reverse_blocks")(
        (3,), block, (sim.asarray(x), y, np.int32(n)), shared_mem=size * 8
    )
    i = np.arange(n)
    src = i // size * size + size - 1 - i % size  # the mirror of i in its block
    np.testing.assert_array_equal(y.get(), np.where(src < n, x[np.minimum(src, n - 1)], 0))


def test_simulator_warp_shuffles(sim):
    x = np.arange(64, dtype=np.float64) ** 2
    y = sim.zeros(4 * 64)
    _self_test_kernel(sim, "warp_shuffles")((2,), (32,), (sim.asarray(x), y))
    y = y.get().reshape(64, 4)
    lane = np.arange(64) % 32
    warp = np.arange(64) // 32
    np.testing.assert_array_equal(y[:, 0], x.reshape(2, 32).sum(axis=1)[warp])
    np.testing.assert_array_equal(y[:, 1], x[np.where(lane < 31, np.arange(64) + 1, np.arange(64))])
    np.testing.assert_array_equal(
        y[:, 2], x[np.where(lane % 16 >= 3, np.arange(64) - 3, np.arange(64))]
    )
    np.testing.assert_array_equal(y[:, 3], x[np.arange(64) // 8 * 8 + 5])


@pytest.mark.parametrize(
    "which, block, shared, message",
    [
        ("divergent_barriers", (64,), 0, "different __syncthreads"),
        ("barrier_against_shuffle", (2,), 0, "deadlock"),
        ("write_past_shared", (64,), 8 * 63, "past the end of the 504 bytes"),
        ("write_past_shared", (65,), 8 * 65 * 2, "argument 0 (double*) written out of bounds"),
        ("misaligned_vector", (32,), 4 * 40, "misaligned address"),
    ],
)
def test_simulator_reports_undefined_behaviour(sim, monkeypatch, which, block, shared, message):
    monkeypatch.setattr(SimulatedKernel, "timeout_s", 0.5)
    y = sim.zeros(64)
    with pytest.raises(SimulationError, match=re.escape(message)):
        _self_test_kernel(sim, which)((1,), block, (y,), shared_mem=shared)


def test_simulator_reports_a_partial_warp_shuffle(sim):
    """layer_norm.cu's block sums need whole warps (its launcher asks for multiples of 32): a
    block of 48 threads shuffles with lanes 16-31 of the second warp, which do not exist."""
    fn = sim.RawModule(
        code=kernels._cuda.source("layer_norm"),
        options=("-std=c++17",),
        name_expressions=["layer_norm_fwd<double>"],
    ).get_function("layer_norm_fwd<double>")
    N, D = 2, 100
    x = np.random.default_rng(0).standard_normal((N, D))
    out = [sim.empty((N, D)), sim.empty((N, D)), sim.empty((N, 1))]
    args = (sim.asarray(x), sim.ones(D), sim.zeros(D), *out, np.int32(N), np.int32(D),
            np.float64(1e-5))
    fn((N,), (64,), args)  # whole warps: fine
    np.testing.assert_allclose(out[2].get()[:, 0], 1 / np.sqrt(x.var(axis=1) + 1e-5),
                               rtol=1e-12)
    with pytest.raises(SimulationError, match="which is not running"):
        fn((N,), (48,), args)


def test_compiles_each_source_once(compiler):
    code = kernels._cuda.source("gelu")
    expressions = ["gelu_fwd<float>", "gelu_bwd<float>"]
    assert compiler.library(code, expressions, "gelu.cu") is compiler.library(
        code, expressions, "gelu.cu"
    )
