"""The fused kernels' maths in NumPy: the emulated back end of the fake CuPy (tests/fake_cuda).

Each function does what its kernel's header comment in ``kernels/<name>.cu`` says it computes,
on the very NumPy buffers behind the launch's device arrays, with the launch's arguments in the
kernel's order. The fake CuPy's ``RawModule`` checks every launch against the kernel's C
signature and the device's limits first (fake_cuda/_kernels.py), so test_cuda_launchers.py can
run the launchers (``_forward_cuda`` / ``_backward_cuda`` in kernels/*.py) fast and compare
their results with the NumPy branches': a wrong argument order, a missing copy, a buffer of the
wrong shape or dtype, or an untyped Python scalar fails there. The CUDA C itself runs in the
simulated back end (tests/kernels/cuda_sim.py, test_cuda_simulated.py).
"""

from __future__ import annotations

import math

import numpy as np
from fake_cuda._array import POINTERS

# ---------------------------------------------------------------------------- kernels in NumPy


def _flat(a):
    return a.reshape(-1)


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def _gelu_fwd(x, y, dydx, n, approximate_tanh):
    v = _flat(x).astype(np.float64)
    if approximate_tanh:
        k, c = math.sqrt(2 / math.pi), 0.044715
        th = np.tanh(k * (v + c * v**3))
        out, d = 0.5 * v * (1 + th), 0.5 * (1 + th) + 0.5 * v * (1 - th**2) * k * (1 + 3 * c * v**2)
    else:
        cdf = 0.5 * np.vectorize(math.erfc)(-v / math.sqrt(2))
        out, d = v * cdf, cdf + v * np.exp(-0.5 * v * v) / math.sqrt(2 * math.pi)
    _flat(y)[:n] = out
    _flat(dydx)[:n] = d


def _gelu_bwd(gy, dydx, gx, n):
    _flat(gx)[:n] = _flat(gy) * _flat(dydx)


def philox4x32_10(index, key0, key1):
    """Philox-4x32-10 of counters (index, index >> 32, 0, 0): the first output word."""
    idx = np.asarray(index, dtype=np.uint64)
    c0, c1 = (idx & 0xFFFFFFFF).astype(np.uint64), (idx >> np.uint64(32)).astype(np.uint64)
    c2 = np.zeros_like(c0)
    c3 = np.zeros_like(c0)
    k0, k1 = np.uint64(key0 & 0xFFFFFFFF), np.uint64(key1 & 0xFFFFFFFF)
    m0, m1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
    mask = np.uint64(0xFFFFFFFF)
    for _ in range(10):
        p0, p1 = m0 * c0, m1 * c2
        hi0, lo0 = p0 >> np.uint64(32), p0 & mask
        hi1, lo1 = p1 >> np.uint64(32), p1 & mask
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0, k1 = (k0 + np.uint64(0x9E3779B9)) & mask, (k1 + np.uint64(0xBB67AE85)) & mask
    return c0, c1, c2, c3


def _keep(n, seed, p):
    bits = philox4x32_10(np.arange(n), int(seed[0]), int(seed[1]))[0]
    u = (bits >> np.uint64(8)).astype(np.float32) * np.float32(1 / 16777216)
    return u >= np.float32(p)


def _dropout_fwd(x, y, n, seed, p, scale):
    _flat(y)[:] = np.where(_keep(int(n), seed, p), _flat(x) * scale, 0)


def _dropout_bwd(gy, gx, n, seed, p, scale):
    _flat(gx)[:] = np.where(_keep(int(n), seed, p), _flat(gy) * scale, 0)


def _layer_norm_fwd(x, w, b, y, xhat, rstd, N, D, eps):
    X = x.reshape(N, D)
    mean = X.mean(axis=1, keepdims=True)
    var = ((X - mean) ** 2).mean(axis=1, keepdims=True)
    r = 1 / np.sqrt(var + eps)
    h = (X - mean) * r
    xhat.reshape(N, D)[:] = h
    y.reshape(N, D)[:] = h * w + b
    _flat(rstd)[:] = r[:, 0]


def _layer_norm_bwd_dx(gy, xhat, rstd, w, gx, N, D):
    G, Xh = gy.reshape(N, D), xhat.reshape(N, D)
    gw = G * w
    a = gw.mean(axis=1, keepdims=True)
    c = (gw * Xh).mean(axis=1, keepdims=True)
    gx.reshape(N, D)[:] = _flat(rstd)[:, None] * (gw - a - Xh * c)


def _layer_norm_bwd_dwdb(gy, xhat, gw, gb, N, D):
    G, Xh = gy.reshape(N, D), xhat.reshape(N, D)
    gw[:] = (G * Xh).sum(axis=0)
    gb[:] = G.sum(axis=0)


def _xent_targets(target, ignore_index, C, weight, has_weight):
    raw = target.astype(np.int64)
    valid = raw != ignore_index
    t = np.where(valid & (raw >= 0) & (raw < C), raw, 0)
    w = weight[:C] if has_weight else np.ones(C, dtype=weight.dtype)
    return raw, valid, t, w, np.where(valid, w[t], 0)


def _xent_fwd(x, target, ignore_index, weight, has_weight, loss, lse, wt, w_total, bad, N, C,
              eps):
    X = x.reshape(N, C)
    raw, valid, t, w, w_t = _xent_targets(target, ignore_index, C, weight, has_weight)
    m = X.max(axis=1)
    shifted = X - m[:, None]
    log_s = np.log(np.exp(shifted).sum(axis=1))
    lse[:] = m + log_s
    W = w.sum() if has_weight else C
    val = (1 - eps) * w_t * (log_s - shifted[np.arange(N), t])
    if eps:
        val = val + eps / C * (W * log_s - shifted @ w)
    loss[:] = np.where(valid, val, 0)
    wt[:] = w_t
    w_total[0] = W if eps else 0
    if np.any(valid & ((raw < 0) | (raw >= C))):
        bad[0] = 1


def _xent_bwd(x, lse, target, ignore_index, weight, has_weight, w_total, gy, gy_stride, denom,
              mean, gx, N, C, eps):
    X = x.reshape(N, C)
    _, valid, t, w, w_t = _xent_targets(target, ignore_index, C, weight, has_weight)
    k = gy[np.arange(N) * gy_stride]
    if mean:
        k = k / denom[0]
    p = np.exp(X - lse[:, None])
    W = w_total[0]
    g = ((1 - eps) * w_t + eps * W / C)[:, None] * p - eps * w[None, :] / C
    g[np.arange(N), t] -= (1 - eps) * w_t
    gx.reshape(N, C)[:] = np.where(valid[:, None], k[:, None] * g, 0)


def _adam(p_ptrs, g_ptrs, offsets, n_tensors, m, v, v_max, total, lr, one_minus_beta1, beta2,
          one_minus_beta2, eps, wd, step_size, bc2_sqrt, flags):
    maximize, decoupled, amsgrad = bool(flags & 1), bool(flags & 2), bool(flags & 4)
    assert offsets[-1] == total and len(offsets) == n_tensors + 1
    for j in range(n_tensors):
        p, g = _flat(POINTERS[int(p_ptrs[j])]), _flat(POINTERS[int(g_ptrs[j])]).copy()
        lo, hi = int(offsets[j]), int(offsets[j + 1])
        assert p.size == hi - lo and g.size == hi - lo
        if wd != 0 and decoupled:
            p *= 1 - lr * wd
        if wd != 0 and not decoupled:
            g = p * wd - g if maximize else p * wd + g
        elif maximize:
            g = -g
        m[lo:hi] += one_minus_beta1 * (g - m[lo:hi])
        v[lo:hi] = beta2 * v[lo:hi] + one_minus_beta2 * g * g
        vv = v[lo:hi]
        if amsgrad:
            np.maximum(v_max[lo:hi], vv, out=v_max[lo:hi])
            vv = v_max[lo:hi]
        p -= step_size * (m[lo:hi] / (np.sqrt(vv) / bc2_sqrt + eps))


def _lstm_fwd(xs_all, hw, bias, cs, hs, valid_all, acts_all, tcs, B, H, k):
    xs, acts, valid = xs_all[k], acts_all[k], valid_all[k]
    c_prev, c_next, h_prev, h_next, tanh_c = cs[k], cs[k + 1], hs[k], hs[k + 1], tcs[k]
    a = xs.reshape(B, 4 * H) + hw.reshape(B, 4 * H) + bias
    i, f, o = _sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H]), _sigmoid(a[:, 3 * H:])
    g = np.tanh(a[:, 2 * H:3 * H])
    acts.reshape(B, 4 * H)[:] = np.concatenate([i, f, g, o], axis=1)
    cp, hp = c_prev.reshape(B, H), h_prev.reshape(B, H)
    c = f * cp + i * g
    tc = np.tanh(c)
    ok = valid.astype(bool)[:, None]
    c_next.reshape(B, H)[:] = np.where(ok, c, cp)
    h_next.reshape(B, H)[:] = np.where(ok, o * tc, hp)
    tanh_c.reshape(B, H)[:] = tc


def _lstm_bwd(dh_mm, dh_keep, gy_all, acts_all, cs, tcs, valid_all, dc, da_all, B, H, k):
    gy, acts, c_prev, tanh_c, valid, da = (gy_all[k], acts_all[k], cs[k], tcs[k], valid_all[k],
                                           da_all[k])
    dh = dh_mm.reshape(B, H) + dh_keep.reshape(B, H) + gy.reshape(B, H)
    A = acts.reshape(B, 4 * H)
    i, f, g, o = A[:, :H], A[:, H:2 * H], A[:, 2 * H:3 * H], A[:, 3 * H:]
    tc = tanh_c.reshape(B, H)
    DC = dc.reshape(B, H)
    dct = DC + dh * o * (1 - tc * tc)
    d = np.concatenate([dct * g * i * (1 - i), dct * c_prev.reshape(B, H) * f * (1 - f),
                        dct * i * (1 - g * g), dh * tc * o * (1 - o)], axis=1)
    ok = valid.astype(bool)[:, None]
    da.reshape(B, 4 * H)[:] = np.where(ok, d, 0)
    DC[:] = np.where(ok, dct * f, DC)
    dh_keep.reshape(B, H)[:] = np.where(ok, 0, dh)


def _gru_fwd(xs_all, ps, bias, hs, valid_all, rzs, ns, B, H, k):
    xs, p, h_prev, h_next, valid, rz, n_out = (xs_all[k], ps[k], hs[k], hs[k + 1], valid_all[k],
                                               rzs[k], ns[k])
    P = p.reshape(B, 3 * H)
    P += bias
    X = xs.reshape(B, 3 * H)
    r = _sigmoid(X[:, :H] + P[:, :H])
    z = _sigmoid(X[:, H:2 * H] + P[:, H:2 * H])
    n = np.tanh(X[:, 2 * H:] + r * P[:, 2 * H:])
    rz.reshape(B, 2 * H)[:] = np.concatenate([r, z], axis=1)
    n_out.reshape(B, H)[:] = n
    hp = h_prev.reshape(B, H)
    h_next.reshape(B, H)[:] = np.where(valid.astype(bool)[:, None], n + z * (hp - n), hp)


def _gru_bwd(dh_mm, dh_keep, gy_all, ps, rzs, ns, hs, valid_all, dp_all, dx_all, B, H, k):
    gy, p, rz, n_in, h_prev, valid, dp, dx = (gy_all[k], ps[k], rzs[k], ns[k], hs[k],
                                              valid_all[k], dp_all[k], dx_all[k])
    dh = dh_mm.reshape(B, H) + dh_keep.reshape(B, H) + gy.reshape(B, H)
    RZ = rz.reshape(B, 2 * H)
    r, z = RZ[:, :H], RZ[:, H:]
    n = n_in.reshape(B, H)
    pn = p.reshape(B, 3 * H)[:, 2 * H:]
    dn = dh * (1 - z) * (1 - n * n)
    dz = dh * (h_prev.reshape(B, H) - n) * z * (1 - z)
    dr = dn * pn * r * (1 - r)
    ok = valid.astype(bool)[:, None]
    dp.reshape(B, 3 * H)[:] = np.where(ok, np.concatenate([dr, dz, dn * r], axis=1), 0)
    dx.reshape(B, 3 * H)[:] = np.where(ok, np.concatenate([dr, dz, dn], axis=1), 0)
    dh_keep.reshape(B, H)[:] = np.where(ok, dh * z, dh)


def _scores(q, k, mask, ms, kind, H, L, S, E, scale):
    BH = q.size // (L * E)
    Q = q.reshape(BH, L, E) * scale
    s = Q @ k.reshape(BH, S, E).transpose(0, 2, 1)  # (BH, L, S)
    if kind == 1:
        s = np.where(np.arange(S)[None, :] > np.arange(L)[:, None], -np.inf, s)
    elif kind in (2, 3):
        M = np.lib.stride_tricks.as_strided(
            mask, (BH // H, H, L, S), tuple(int(st) * mask.itemsize for st in ms)
        ).reshape(BH, L, S)
        s = np.where(M != 0, s, -np.inf) if kind == 2 else s + M
    return Q, s


def _probs(s, lse):
    with np.errstate(invalid="ignore", over="ignore"):
        p = np.exp(s - lse[..., None])
    return np.where(np.isfinite(s), np.nan_to_num(p), 0)


def _flash_fwd(q, k, v, out, lse, mask, ms0, ms1, ms2, ms3, kind, H, L, S, E, Ev, scale,
               tile):
    _, s = _scores(q, k, mask, (ms0, ms1, ms2, ms3), kind, H, L, S, E, scale)
    BH = s.shape[0]
    m = s.max(axis=-1)
    dead = ~np.isfinite(m)
    e = np.exp(s - np.where(dead, 0, m)[..., None])
    total = e.sum(axis=-1)
    o = (e @ v.reshape(BH, S, Ev)) / np.where(dead, 1, total)[..., None]
    out.reshape(BH, L, Ev)[:] = np.where(dead[..., None], 0, o)
    lse.reshape(BH, L)[:] = np.where(dead, np.inf, m + np.log(np.where(dead, 1, total)))


def _flash_ds(q, k, v, gout, lse, delta, mask, ms, kind, H, L, S, E, Ev, scale):
    Q, s = _scores(q, k, mask, ms, kind, H, L, S, E, scale)
    BH = s.shape[0]
    p = _probs(s, lse.reshape(BH, L))
    go = gout.reshape(BH, L, Ev)
    dp = go @ v.reshape(BH, S, Ev).transpose(0, 2, 1)
    return Q, p, go, p * (dp - delta.reshape(BH, L)[..., None]), dp


def _flash_dkdv(q, k, v, gout, lse, delta, gk, gv, mask, ms0, ms1, ms2, ms3, kind, H, L, S, E,
                Ev, scale, tile):
    Q, p, go, ds, _ = _flash_ds(q, k, v, gout, lse, delta, mask, (ms0, ms1, ms2, ms3), kind,
                                H, L, S, E, Ev, scale)
    gv.reshape(p.shape[0], S, Ev)[:] = p.transpose(0, 2, 1) @ go
    gk.reshape(p.shape[0], S, E)[:] = ds.transpose(0, 2, 1) @ Q


def _flash_dq(q, k, v, gout, lse, delta, gq, mask, ms0, ms1, ms2, ms3, kind, H, L, S, E, Ev,
              scale, tile):
    ms = (ms0, ms1, ms2, ms3)
    _, p, _, _, dp = _flash_ds(q, k, v, gout, lse, np.zeros_like(delta), mask, ms, kind, H, L,
                               S, E, Ev, scale)
    delta.reshape(p.shape[0], L)[:] = (p * dp).sum(axis=-1)  # written for the dkdv kernel
    ds = p * (dp - delta.reshape(p.shape[0], L)[..., None])
    gq.reshape(p.shape[0], L, E)[:] = (ds @ k.reshape(p.shape[0], S, E)) * scale


EMULATED = {
    "gelu_fwd": _gelu_fwd, "gelu_bwd": _gelu_bwd,
    "dropout_fwd": _dropout_fwd, "dropout_bwd": _dropout_bwd,
    "layer_norm_fwd": _layer_norm_fwd, "layer_norm_bwd_dx": _layer_norm_bwd_dx,
    "layer_norm_bwd_dwdb": _layer_norm_bwd_dwdb,
    "softmax_xent_fwd": _xent_fwd, "softmax_xent_bwd": _xent_bwd,
    "adam_multi_tensor": _adam,
    "lstm_step_fwd": _lstm_fwd, "lstm_step_bwd": _lstm_bwd,
    "gru_step_fwd": _gru_fwd, "gru_step_bwd": _gru_bwd,
    "flash_attn_fwd": _flash_fwd, "flash_attn_bwd_dkdv": _flash_dkdv,
    "flash_attn_bwd_dq": _flash_dq,
}


def kernel(name: str):
    """The emulation of kernel ``name``, called as the simulator's kernels are:
    ``fn(grid, block, args, shared_mem=0)`` with NumPy buffers and scalars."""
    maths = EMULATED[name]

    def run(grid, block, args, shared_mem=0):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            maths(*args)

    return run
