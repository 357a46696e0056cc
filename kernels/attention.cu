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
//   ds = 0 exactly, as the composite does. For that every kernel forms its scores and
//   dout_i . v_j sums alike: one explicit fma per term, 4 (float) or 2 (double) partial sums
//   added in a fixed order (dot_row).
// A query whose keys are all masked has no softmax: its output is 0, its lse +inf, and every
// p_ij = exp(s - inf) = 0 in the backward (PyTorch 2.13's math path gives zeros too).
// Masks are read through 4 element strides (b, h, i, j) with b = bh / H, h = bh % H, so
// broadcast masks ((L, S), key padding (B, 1, 1, S)) are never expanded.
//
// Launch layout: grid (BH, ceil(rows / blockDim.x)); one thread per query row (fwd, dq) or key
// row (dkdv), blockDim.x = 64; the other operand streams through shared memory in tiles of
// `tile` rows (dynamic shared memory, tile * (Ep + Evp [+ 2]) elements, kept under 48 KB by
// the launcher). Each thread keeps its row of q (or k, v) and its accumulators in arrays of
// DMAX = 64 or 128 entries (a template argument: head dims up to 64 use the 64 version), whose
// loops are unrolled so the arrays can live in registers. Causal blocks stop at the diagonal;
// the query-row kernels (fwd, dq) take their row blocks last first (blockIdx.y 0 is the last
// block of rows: the most keys under a causal mask), so the longest blocks are scheduled first
// and the GPU's last wave is made of short ones; dkdv's key blocks are in that order already.
// Every thread of a warp reads the same shared row (a broadcast), 16 bytes per load (VecN<T>):
// rows in shared memory are padded with zeros to Ep = E and Evp = Ev rounded up to 4 floats or
// 2 doubles, and the register rows are zero past E and Ev, so the padding adds exact zeros and
// each 16-byte load feeds 4 (or 2) fused multiply-adds instead of one.
// Dtypes: T = float or double for everything (accumulators, lse and delta included).
// Numerics: online softmax: a running max m and sum l per row; when a larger score arrives,
// l and the accumulator are rescaled by exp(m_old - m_new); masked keys are skipped before any
// exp, so no (-inf) - (-inf) is ever formed.

#include "_math.cuh"  // exp_, log_, fma_, inf_: float and double overloads

#define UNROLL _Pragma("unroll")

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

// 16 bytes of shared memory in one load: VecN<T>::N values (4 floats or 2 doubles) from a
// 16-byte aligned address.
template <typename T>
struct VecN;
template <>
struct VecN<float> {
  static constexpr int N = 4;
  static __device__ __forceinline__ void load(const float* p, float* o) {
    const float4 v = *reinterpret_cast<const float4*>(p);
    o[0] = v.x; o[1] = v.y; o[2] = v.z; o[3] = v.w;
  }
};
template <>
struct VecN<double> {
  static constexpr int N = 2;
  static __device__ __forceinline__ void load(const double* p, double* o) {
    const double2 v = *reinterpret_cast<const double2*>(p);
    o[0] = v.x; o[1] = v.y;
  }
};

// D rounded up to a whole number of 16-byte vectors: the padded row length in shared memory.
template <typename T>
__device__ __forceinline__ int padded(int D) {
  return (D + VecN<T>::N - 1) / VecN<T>::N * VecN<T>::N;
}

// Copy rows r0 .. r0+n-1 of a (rows, D) matrix, times `mul`, into shared memory rows of Dp >= D
// values, the padding zero; all the block's threads together (the caller synchronises before
// and after).
template <typename T>
__device__ __forceinline__ void load_rows(T* dst, const T* __restrict__ src, int r0, int n,
                                          int D, int Dp, T mul) {
  const T* s = src + (long long)r0 * D;
  if (D == Dp) {
    for (int idx = threadIdx.x; idx < n * D; idx += blockDim.x) dst[idx] = s[idx] * mul;
    return;
  }
  for (int idx = threadIdx.x; idx < n * Dp; idx += blockDim.x) {
    const int r = idx / Dp, c = idx - r * Dp;
    dst[idx] = c < D ? s[(long long)r * D + c] * mul : T(0);
  }
}

// Copy keys j0 .. j0+n-1 and their values of one (batch, head) into shared memory.
template <typename T>
__device__ __forceinline__ void load_kv_tile(T* ks, T* vs, const T* __restrict__ kb,
                                             const T* __restrict__ vb, int j0, int n, int E,
                                             int Ev) {
  load_rows(ks, kb, j0, n, E, padded<T>(E), T(1));
  load_rows(vs, vb, j0, n, Ev, padded<T>(Ev), T(1));
}

// The N partial sums of a dot product added up, always in the same order.
template <typename T, int N>
__device__ __forceinline__ T sum_parts(const T (&part)[N]) {
  if constexpr (N == 4) return (part[0] + part[1]) + (part[2] + part[3]);
  else return part[0] + part[1];
}

// sum_d r[d] * row[d] over d < Dp (r zero past the head dim): N partial sums (lane u of each
// vector into part[u], so the fused multiply-adds form N independent chains instead of one
// long dependent one), each term one explicit fma, in order of d. The same operands give the
// same bits in every kernel, whatever the compiler contracts elsewhere (the backward's exact
// zero ds for a saturated softmax needs the scores and the dout . v sums of the dq and dk/dv
// kernels to be equal).
template <typename T, int DMAX>
__device__ __forceinline__ T dot_row(const T* r, const T* row, int Dp) {
  constexpr int N = VecN<T>::N;
  T part[N];
  UNROLL for (int u = 0; u < N; ++u) part[u] = T(0);
  UNROLL for (int d = 0; d < DMAX; d += N) if (d < Dp) {
    T x[N];
    VecN<T>::load(row + d, x);
    UNROLL for (int u = 0; u < N; ++u) part[u] = fma_(r[d + u], x[u], part[u]);
  }
  return sum_parts(part);
}

// acc[d] += a * row[d] over d < Dp.
template <typename T, int DMAX>
__device__ __forceinline__ void axpy_row(T* acc, T a, const T* row, int Dp) {
  constexpr int N = VecN<T>::N;
  UNROLL for (int d = 0; d < DMAX; d += N) if (d < Dp) {
    T x[N];
    VecN<T>::load(row + d, x);
    UNROLL for (int u = 0; u < N; ++u) acc[d + u] += a * x[u];
  }
}

// What a query-row kernel (fwd, dq) works on: its thread's query row i of (batch * head)
// blockIdx.x, the keys and values it streams, the mask row, and the shared-memory tiles.
// The blocks take the last query rows first: under a causal mask those see the most keys, so
// the longest blocks start in the first wave and the short ones fill the tail.
template <typename T>
struct QueryRow {
  int row0, i;     // the block's first query row; this thread's
  bool active;     // i < L (the last block may reach past the end)
  const T* kb;     // the keys (S, E) and values (S, Ev) of this (batch, head)
  const T* vb;
  long long moff;  // the mask's offset of (b, h, i)
  T* ks;           // shared memory: a tile of keys (tile, Ep), then of values (tile, Evp)
  T* vs;
};

template <typename T>
__device__ __forceinline__ QueryRow<T> query_row(unsigned char* smem, const T* k, const T* v,
                                                 long long ms0, long long ms1, long long ms2,
                                                 int H, int L, int S, int E, int Ev,
                                                 int tile) {
  const int bh = blockIdx.x;
  QueryRow<T> r;
  r.row0 = (gridDim.y - 1 - blockIdx.y) * blockDim.x;
  r.i = r.row0 + threadIdx.x;
  r.active = r.i < L;
  r.kb = k + (long long)bh * S * E;
  r.vb = v + (long long)bh * S * Ev;
  r.moff = (long long)(bh / H) * ms0 + (long long)(bh % H) * ms1 + (long long)r.i * ms2;
  r.ks = reinterpret_cast<T*>(smem);
  r.vs = r.ks + (long long)tile * padded<T>(E);
  return r;
}

// Call visit(jj, s) for every key j that query row i may attend, with its score s (scaled,
// masked) and its place jj in the shared-memory tile (r.ks, r.vs rows). The keys and values
// stream through shared memory tile by tile: all the block's threads stage each tile together
// (barriers), then each visits its own row's keys. Under a causal mask the tiles past the
// block's diagonal are never staged, and a row's keys stop at j = i.
template <typename T, int DMAX, typename Visit>
__device__ __forceinline__ void for_each_key(const QueryRow<T>& r, const T* qr,
                                             const void* mask, long long ms3, int kind, int S,
                                             int E, int Ev, int tile, Visit&& visit) {
  const int Ep = padded<T>(E);
  for (int j0 = 0; j0 < S; j0 += tile) {
    if (kind == 1 && j0 > r.row0 + (int)blockDim.x - 1) break;  // past the block's diagonal
    const int n = min(tile, S - j0);
    __syncthreads();  // the previous tile is consumed
    load_kv_tile(r.ks, r.vs, r.kb, r.vb, j0, n, E, Ev);
    __syncthreads();
    if (!r.active) continue;
    for (int jj = 0; jj < n; ++jj) {
      const int j = j0 + jj;
      if (kind == 1 && j > r.i) break;
      T s = dot_row<T, DMAX>(qr, r.ks + jj * Ep, Ep);
      if (!masked_score(s, kind, mask, r.moff + (long long)j * ms3)) continue;
      visit(jj, s);
    }
  }
}

template <typename T, int DMAX>
__global__ void flash_attn_fwd(const T* __restrict__ q, const T* __restrict__ k,
                               const T* __restrict__ v, T* __restrict__ out,
                               T* __restrict__ lse, const void* __restrict__ mask,
                               long long ms0, long long ms1, long long ms2, long long ms3,
                               int kind, int H, int L, int S, int E, int Ev, T scale, int tile) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int Ep = padded<T>(E), Evp = padded<T>(Ev);
  const QueryRow<T> r = query_row(smem_raw, k, v, ms0, ms1, ms2, H, L, S, E, Ev, tile);
  const int bh = blockIdx.x, i = r.i;
  T qr[DMAX], acc[DMAX];
  const long long qrow = ((long long)bh * L + i) * E;  // this thread's query row
  UNROLL for (int d = 0; d < DMAX; ++d) qr[d] = r.active && d < E ? q[qrow + d] * scale : T(0);
  UNROLL for (int d = 0; d < DMAX; ++d) acc[d] = T(0);
  T m = -inf_(T(0)), l = T(0);
  for_each_key<T, DMAX>(r, qr, mask, ms3, kind, S, E, Ev, tile, [&](int jj, T s) {
    if (s > m) {  // a new running max: rescale what was summed so far
      const T corr = exp_(m - s);
      l *= corr;
      UNROLL for (int d = 0; d < DMAX; ++d) if (d < Evp) acc[d] *= corr;
      m = s;
    }
    const T p = exp_(s - m);
    l += p;
    axpy_row<T, DMAX>(acc, p, r.vs + jj * Evp, Evp);
  });
  if (!r.active) return;
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
  constexpr int N = VecN<T>::N;
  const int Ep = padded<T>(E), Evp = padded<T>(Ev);
  T* qs = reinterpret_cast<T*>(smem_raw);  // (tile, Ep), pre-scaled
  T* gs = qs + (long long)tile * Ep;       // (tile, Evp)
  T* ls = gs + (long long)tile * Evp;      // (tile,) lse
  T* ds_ = ls + tile;                      // (tile,) delta
  const int bh = blockIdx.x;
  const int row0 = blockIdx.y * blockDim.x;
  const int j = row0 + threadIdx.x;
  const bool active = j < S;
  const long long boff = (long long)(bh / H) * ms0 + (long long)(bh % H) * ms1 +
                         (long long)j * ms3;
  T kr[DMAX], vr[DMAX], dk[DMAX], dv[DMAX];
  UNROLL for (int d = 0; d < DMAX; ++d) {
    kr[d] = active && d < E ? k[((long long)bh * S + j) * E + d] : T(0);
    vr[d] = active && d < Ev ? v[((long long)bh * S + j) * Ev + d] : T(0);
    dk[d] = T(0);
    dv[d] = T(0);
  }
  for (int i0 = 0; i0 < L; i0 += tile) {
    const int n = min(tile, L - i0);
    if (kind == 1 && i0 + n - 1 < row0) continue;  // every query of the tile precedes the keys
    __syncthreads();
    load_rows(qs, q + (long long)bh * L * E, i0, n, E, Ep, scale);
    load_rows(gs, gout + (long long)bh * L * Ev, i0, n, Ev, Evp, T(1));
    for (int idx = threadIdx.x; idx < n; idx += blockDim.x) {
      ls[idx] = lse[(long long)bh * L + i0 + idx];
      ds_[idx] = delta[(long long)bh * L + i0 + idx];
    }
    __syncthreads();
    if (!active) continue;
    for (int ii = 0; ii < n; ++ii) {
      const int i = i0 + ii;
      if (kind == 1 && j > i) continue;
      T s = dot_row<T, DMAX>(kr, qs + ii * Ep, Ep);
      if (!masked_score(s, kind, mask, boff + (long long)i * ms2)) continue;
      const T p = exp_(s - ls[ii]);  // 0 for a dead row (lse = +inf)
      if (p == T(0)) continue;
      T part[N];  // dp = dout_i . v_j, summed as dot_row sums it in dq (the same bits)
      UNROLL for (int u = 0; u < N; ++u) part[u] = T(0);
      UNROLL for (int d = 0; d < DMAX; d += N) if (d < Evp) {
        T g[N];
        VecN<T>::load(gs + ii * Evp + d, g);
        UNROLL for (int u = 0; u < N; ++u) {
          dv[d + u] += p * g[u];
          part[u] = fma_(g[u], vr[d + u], part[u]);
        }
      }
      const T dp = sum_parts(part);
      const T dsij = p * (dp - ds_[ii]);
      axpy_row<T, DMAX>(dk, dsij, qs + ii * Ep, Ep);
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
  const int Ep = padded<T>(E), Evp = padded<T>(Ev);
  const QueryRow<T> r = query_row(smem_raw, k, v, ms0, ms1, ms2, H, L, S, E, Ev, tile);
  const int bh = blockIdx.x, i = r.i;
  T qr[DMAX], gr[DMAX], dq[DMAX];
  const long long qrow = ((long long)bh * L + i) * E;
  const long long grow = ((long long)bh * L + i) * Ev;
  UNROLL for (int d = 0; d < DMAX; ++d) {
    qr[d] = r.active && d < E ? q[qrow + d] * scale : T(0);
    gr[d] = r.active && d < Ev ? gout[grow + d] : T(0);
    dq[d] = T(0);
  }
  const T lse_i = r.active ? lse[(long long)bh * L + i] : inf_(T(0));
  T delta_i = T(0);
  // pass 0: delta_i = sum_j p_ij dp_ij; pass 1: dq_i = sum_j p_ij (dp_ij - delta_i) k_j
  for (int pass = 0; pass < 2; ++pass) {
    for_each_key<T, DMAX>(r, qr, mask, ms3, kind, S, E, Ev, tile, [&](int jj, T s) {
      const T p = exp_(s - lse_i);
      if (p == T(0)) return;
      const T dp = dot_row<T, DMAX>(gr, r.vs + jj * Evp, Evp);
      if (pass == 0) {
        delta_i += p * dp;
      } else {
        const T dsij = p * (dp - delta_i);
        axpy_row<T, DMAX>(dq, dsij, r.ks + jj * Ep, Ep);
      }
    });
  }
  if (!r.active) return;
  delta[(long long)bh * L + i] = delta_i;
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
