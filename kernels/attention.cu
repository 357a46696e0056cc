// attention.cu: flash-attention style scaled dot-product attention, forward and backward,
// with causal, boolean and additive masks; the (L, S) score matrix is never stored in global
// memory.
//
// Computes, for each (batch * head) bh and query row i (q (BH, L, E), k (BH, S, E),
// v (BH, S, Ev), all contiguous; scale a float):
//   s_ij = (q_i * scale) . k_j + M_ij    M: kind 0 none; 1 causal (j > i masked); 2 bool mask
//                                        (0 = masked); 3 additive mask (-inf masks)
//   forward (flash_attn_fwd):  out_i = sum_j p_ij v_j,  p_ij = exp(s_ij - lse_i),
//                              lse_i = log sum_j exp(s_ij)   (kept, one per row)
//   backward:  delta_i = sum_j p_ij (dout_i . v_j)  and
//              dq_i = scale sum_j ds_ij k_j                   (flash_attn_bwd_dq, first)
//              dv_j = sum_i p_ij dout_i;  dk_j = sum_i ds_ij (q_i * scale)
//                                                             (flash_attn_bwd_dkdv, then)
//              with ds_ij = p_ij (dout_i . v_j - delta_i), p recomputed from lse.
//   delta is summed from the same dout_i . v_j products the gradients use (not as
//   dout_i . out_i, equal only in exact arithmetic), so a saturated softmax (p one-hot) gives
//   ds = 0 exactly, as the composite does.
// A query whose keys are all masked has no softmax: its output is 0, its lse +inf, and every
// p_ij = exp(s - inf) = 0 in the backward (PyTorch 2.13's math path gives zeros too).
// Masks are read through 4 element strides (b, h, i, j) with b = bh / H, h = bh % H, so
// broadcast masks ((L, S), key padding (B, 1, 1, S)) are never expanded.
//
// Launch layout: grid (BH, ceil(rows / blockDim.x)); one thread per query row (fwd, dq) or key
// row (dkdv), blockDim.x = 64; the other operand streams through shared memory in tiles of
// `tile` rows (dynamic shared memory, tile * (E + Ev [+ 2]) elements, kept under 48 KB by the
// launcher). Each thread keeps its row of q (or k, v) and its accumulators in arrays of
// DMAX = 64 or 128 entries (a template argument: head dims up to 64 use the 64 version), whose
// loops are unrolled so the arrays can live in registers. Causal blocks stop at the diagonal.
// Dtypes: T = float or double for everything (accumulators, lse and delta included).
// Numerics: online softmax: a running max m and sum l per row; when a larger score arrives,
// l and the accumulator are rescaled by exp(m_old - m_new); masked keys are skipped before any
// exp, so no (-inf) - (-inf) is ever formed.

#define UNROLL _Pragma("unroll")

__device__ __forceinline__ float exp_(float x) { return expf(x); }
__device__ __forceinline__ double exp_(double x) { return exp(x); }
__device__ __forceinline__ float log_(float x) { return logf(x); }
__device__ __forceinline__ double log_(double x) { return log(x); }
__device__ __forceinline__ float inf_(float) { return __int_as_float(0x7f800000); }
__device__ __forceinline__ double inf_(double) {
  return __longlong_as_double(0x7ff0000000000000LL);
}

// Apply the mask to score s of (bh, i, j); false when the key is masked out.
template <typename T>
__device__ __forceinline__ bool masked_score(T& s, int kind, const void* mask, long long offset) {
  if (kind == 2) return reinterpret_cast<const unsigned char*>(mask)[offset] != 0;
  if (kind == 3) {
    s += reinterpret_cast<const T*>(mask)[offset];
    return s != -inf_(s);
  }
  return true;
}

// Copy keys j0 .. j0+n-1 and their values of one (batch, head) into shared memory, all the
// block's threads together (the caller synchronises before and after).
template <typename T>
__device__ __forceinline__ void load_kv_tile(T* ks, T* vs, const T* __restrict__ kb,
                                             const T* __restrict__ vb, int j0, int n, int E,
                                             int Ev) {
  for (int idx = threadIdx.x; idx < n * E; idx += blockDim.x)
    ks[idx] = kb[(long long)j0 * E + idx];
  for (int idx = threadIdx.x; idx < n * Ev; idx += blockDim.x)
    vs[idx] = vb[(long long)j0 * Ev + idx];
}

template <typename T, int DMAX>
__global__ void flash_attn_fwd(const T* __restrict__ q, const T* __restrict__ k,
                               const T* __restrict__ v, T* __restrict__ out,
                               T* __restrict__ lse, const void* __restrict__ mask,
                               long long ms0, long long ms1, long long ms2, long long ms3,
                               int kind, int H, int L, int S, int E, int Ev, T scale, int tile) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* ks = reinterpret_cast<T*>(smem_raw);  // (tile, E)
  T* vs = ks + (long long)tile * E;        // (tile, Ev)
  const int bh = blockIdx.x;
  const int row0 = blockIdx.y * blockDim.x;
  const int i = row0 + threadIdx.x;
  const bool active = i < L;
  const T* kb = k + (long long)bh * S * E;
  const T* vb = v + (long long)bh * S * Ev;
  const long long moff = (long long)(bh / H) * ms0 + (long long)(bh % H) * ms1 +
                         (long long)i * ms2;
  T qr[DMAX], acc[DMAX];
  const long long qrow = ((long long)bh * L + i) * E;  // this thread's query row
  UNROLL for (int d = 0; d < DMAX; ++d) if (d < E) qr[d] = active ? q[qrow + d] * scale : T(0);
  UNROLL for (int d = 0; d < DMAX; ++d) if (d < Ev) acc[d] = T(0);
  T m = -inf_(T(0)), l = T(0);
  for (int j0 = 0; j0 < S; j0 += tile) {
    if (kind == 1 && j0 > row0 + (int)blockDim.x - 1) break;  // past the block's diagonal
    const int n = min(tile, S - j0);
    __syncthreads();  // the previous tile is consumed
    load_kv_tile(ks, vs, kb, vb, j0, n, E, Ev);
    __syncthreads();
    if (!active) continue;
    for (int jj = 0; jj < n; ++jj) {
      const int j = j0 + jj;
      if (kind == 1 && j > i) break;
      T s = T(0);
      UNROLL for (int d = 0; d < DMAX; ++d) if (d < E) s += qr[d] * ks[jj * E + d];
      if (!masked_score(s, kind, mask, moff + (long long)j * ms3)) continue;
      if (s > m) {  // a new running max: rescale what was summed so far
        const T corr = exp_(m - s);
        l *= corr;
        UNROLL for (int d = 0; d < DMAX; ++d) if (d < Ev) acc[d] *= corr;
        m = s;
      }
      const T p = exp_(s - m);
      l += p;
      UNROLL for (int d = 0; d < DMAX; ++d) if (d < Ev) acc[d] += p * vs[jj * Ev + d];
    }
  }
  if (!active) return;
  const T inv = l > T(0) ? T(1) / l : T(0);
  const long long orow = ((long long)bh * L + i) * Ev;
  UNROLL for (int d = 0; d < DMAX; ++d) if (d < Ev) out[orow + d] = acc[d] * inv;
  lse[(long long)bh * L + i] = l > T(0) ? m + log_(l) : inf_(T(0));
}

template <typename T, int DMAX>
__global__ void flash_attn_bwd_dkdv(const T* __restrict__ q, const T* __restrict__ k,
                                    const T* __restrict__ v, const T* __restrict__ gout,
                                    const T* __restrict__ lse, const T* __restrict__ delta,
                                    T* __restrict__ gk, T* __restrict__ gv,
                                    const void* __restrict__ mask, long long ms0, long long ms1,
                                    long long ms2, long long ms3, int kind, int H, int L, int S,
                                    int E, int Ev, T scale, int tile) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* qs = reinterpret_cast<T*>(smem_raw);  // (tile, E), pre-scaled
  T* gs = qs + (long long)tile * E;        // (tile, Ev)
  T* ls = gs + (long long)tile * Ev;       // (tile,) lse
  T* ds_ = ls + tile;                      // (tile,) delta
  const int bh = blockIdx.x;
  const int row0 = blockIdx.y * blockDim.x;
  const int j = row0 + threadIdx.x;
  const bool active = j < S;
  const long long boff = (long long)(bh / H) * ms0 + (long long)(bh % H) * ms1 +
                         (long long)j * ms3;
  T kr[DMAX], vr[DMAX], dk[DMAX], dv[DMAX];
  UNROLL for (int d = 0; d < DMAX; ++d) if (d < E) {
    kr[d] = active ? k[((long long)bh * S + j) * E + d] : T(0);
    dk[d] = T(0);
  }
  UNROLL for (int d = 0; d < DMAX; ++d) if (d < Ev) {
    vr[d] = active ? v[((long long)bh * S + j) * Ev + d] : T(0);
    dv[d] = T(0);
  }
  for (int i0 = 0; i0 < L; i0 += tile) {
    const int n = min(tile, L - i0);
    if (kind == 1 && i0 + n - 1 < row0) continue;  // every query of the tile precedes the keys
    __syncthreads();
    for (int idx = threadIdx.x; idx < n * E; idx += blockDim.x)
      qs[idx] = q[((long long)bh * L + i0) * E + idx] * scale;
    for (int idx = threadIdx.x; idx < n * Ev; idx += blockDim.x)
      gs[idx] = gout[((long long)bh * L + i0) * Ev + idx];
    for (int idx = threadIdx.x; idx < n; idx += blockDim.x) {
      ls[idx] = lse[(long long)bh * L + i0 + idx];
      ds_[idx] = delta[(long long)bh * L + i0 + idx];
    }
    __syncthreads();
    if (!active) continue;
    for (int ii = 0; ii < n; ++ii) {
      const int i = i0 + ii;
      if (kind == 1 && j > i) continue;
      T s = T(0);
      UNROLL for (int d = 0; d < DMAX; ++d) if (d < E) s += qs[ii * E + d] * kr[d];
      if (!masked_score(s, kind, mask, boff + (long long)i * ms2)) continue;
      const T p = exp_(s - ls[ii]);  // 0 for a dead row (lse = +inf)
      if (p == T(0)) continue;
      T dp = T(0);
      UNROLL for (int d = 0; d < DMAX; ++d) if (d < Ev) {
        dv[d] += p * gs[ii * Ev + d];
        dp += gs[ii * Ev + d] * vr[d];  // the same products, in the same order, as in dq
      }
      const T dsij = p * (dp - ds_[ii]);
      UNROLL for (int d = 0; d < DMAX; ++d) if (d < E) dk[d] += dsij * qs[ii * E + d];
    }
  }
  if (!active) return;
  UNROLL for (int d = 0; d < DMAX; ++d) if (d < E) gk[((long long)bh * S + j) * E + d] = dk[d];
  UNROLL for (int d = 0; d < DMAX; ++d) if (d < Ev) gv[((long long)bh * S + j) * Ev + d] = dv[d];
}

template <typename T, int DMAX>
__global__ void flash_attn_bwd_dq(const T* __restrict__ q, const T* __restrict__ k,
                                  const T* __restrict__ v, const T* __restrict__ gout,
                                  const T* __restrict__ lse, T* __restrict__ delta,
                                  T* __restrict__ gq, const void* __restrict__ mask,
                                  long long ms0, long long ms1, long long ms2, long long ms3,
                                  int kind, int H, int L, int S, int E, int Ev, T scale,
                                  int tile) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* ks = reinterpret_cast<T*>(smem_raw);  // (tile, E)
  T* vs = ks + (long long)tile * E;        // (tile, Ev)
  const int bh = blockIdx.x;
  const int row0 = blockIdx.y * blockDim.x;
  const int i = row0 + threadIdx.x;
  const bool active = i < L;
  const T* kb = k + (long long)bh * S * E;
  const T* vb = v + (long long)bh * S * Ev;
  const long long moff = (long long)(bh / H) * ms0 + (long long)(bh % H) * ms1 +
                         (long long)i * ms2;
  T qr[DMAX], gr[DMAX], dq[DMAX];
  UNROLL for (int d = 0; d < DMAX; ++d) if (d < E) {
    qr[d] = active ? q[((long long)bh * L + i) * E + d] * scale : T(0);
    dq[d] = T(0);
  }
  const long long grow = ((long long)bh * L + i) * Ev;
  UNROLL for (int d = 0; d < DMAX; ++d) if (d < Ev) gr[d] = active ? gout[grow + d] : T(0);
  const T lse_i = active ? lse[(long long)bh * L + i] : inf_(T(0));
  T delta_i = T(0);
  // pass 0: delta_i = sum_j p_ij dp_ij; pass 1: dq_i = sum_j p_ij (dp_ij - delta_i) k_j
  for (int pass = 0; pass < 2; ++pass) {
    for (int j0 = 0; j0 < S; j0 += tile) {
      if (kind == 1 && j0 > row0 + (int)blockDim.x - 1) break;
      const int n = min(tile, S - j0);
      __syncthreads();
      load_kv_tile(ks, vs, kb, vb, j0, n, E, Ev);
      __syncthreads();
      if (!active) continue;
      for (int jj = 0; jj < n; ++jj) {
        const int j = j0 + jj;
        if (kind == 1 && j > i) break;
        T s = T(0);
        UNROLL for (int d = 0; d < DMAX; ++d) if (d < E) s += qr[d] * ks[jj * E + d];
        if (!masked_score(s, kind, mask, moff + (long long)j * ms3)) continue;
        const T p = exp_(s - lse_i);
        if (p == T(0)) continue;
        T dp = T(0);
        UNROLL for (int d = 0; d < DMAX; ++d) if (d < Ev) dp += gr[d] * vs[jj * Ev + d];
        if (pass == 0) {
          delta_i += p * dp;
        } else {
          const T dsij = p * (dp - delta_i);
          UNROLL for (int d = 0; d < DMAX; ++d) if (d < E) dq[d] += dsij * ks[jj * E + d];
        }
      }
    }
  }
  if (!active) return;
  delta[(long long)bh * L + i] = delta_i;
  const long long qrow = ((long long)bh * L + i) * E;
  UNROLL for (int d = 0; d < DMAX; ++d) if (d < E) gq[qrow + d] = dq[d] * scale;
}

#ifndef __CUDACC_RTC__  // nvcc (the compile check): instantiate what NVRTC gets by name
#define INSTANTIATE(T, D)                                                                      \
  template __global__ void flash_attn_fwd<T, D>(const T*, const T*, const T*, T*, T*,          \
                                                const void*, long long, long long, long long,  \
                                                long long, int, int, int, int, int, int, T,    \
                                                int);                                          \
  template __global__ void flash_attn_bwd_dkdv<T, D>(const T*, const T*, const T*, const T*,   \
                                                     const T*, const T*, T*, T*, const void*,  \
                                                     long long, long long, long long,          \
                                                     long long, int, int, int, int, int, int,  \
                                                     T, int);                                  \
  template __global__ void flash_attn_bwd_dq<T, D>(const T*, const T*, const T*, const T*,     \
                                                   const T*, T*, T*, const void*,              \
                                                   long long, long long, long long, long long, \
                                                   int, int, int, int, int, int, T, int);
INSTANTIATE(float, 64)
INSTANTIATE(float, 128)
INSTANTIATE(double, 64)
INSTANTIATE(double, 128)
#endif
