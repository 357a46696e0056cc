// softmax_cross_entropy.cu: fused softmax cross-entropy from (N, C) logits and class indices.
//
// Computes, per row n (x contiguous (N, C); target[n] a class index or ignore_index; w = class
// weights (has_weight), else all ones; W = sum_c w_c; eps = smoothing):
//   valid_n = target[n] != ignore_index;  t = target[n] if valid_n and 0 <= target[n] < C, else 0
//   (a valid target out of range sets *bad, which the launcher reports at the next
//   synchronisation; its row reads class 0 meanwhile, never memory outside the row)
//   w_t    = valid_n ? w[t] : 0   (written to wt[n]: 'mean' divides by their sum)
//   lse_n  = max_n + log(sum_c exp(x_nc - max_n))
//   loss_n = valid_n ? (1 - eps) w_t (lse_n - x_nt) + eps/C (W lse_n - sum_c w_c x_nc) : 0
//   (softmax_xent_fwd writes loss_n, lse_n and w_t; block 0 also writes W to *w_total; the
//   reduction is done by the launcher)
//   dx_nc  = k_n [((1 - eps) w_t + eps W / C) p_nc - (1 - eps) w_t [c == t] - eps w_c / C],
//   p_nc = exp(x_nc - lse_n), k_n = gy[n * gy_stride] / *denom (mean: the summed w_t; else no
//   division), 0 where ignored (softmax_xent_bwd: p recomputed from x and lse, so no (N, C)
//   buffer is kept)
// Everything about the targets (validity, range, weights, the per-row scale of the gradient)
// is worked out in the kernels, so a step makes no other launches for them.
//
// Launch layout: fwd: one block per row (grid N), blockDim a multiple of 32 up to 256
// (kernels/_cuda.py rows_block), each thread striding over the row; block max and sums by warp
// shuffles and one shared slot per warp. bwd: a 1-D grid-stride loop over the N * C entries.
// Dtypes: T = float or double; targets int64; the bad flag uint8.
// Numerics: max-shifted (online over the row: the max is found first), so logits of 1e4 give
// finite losses and gradients; the sums of w_c x_nc use the max-shifted logits as well.

#include "_math.cuh"  // exp_, log_, max_, lowest_: float and double overloads

template <typename T, bool IS_MAX>
__device__ T block_reduce(T v, T* slots) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int n_warps = (blockDim.x + 31) >> 5;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    const T o = __shfl_xor_sync(0xffffffffu, v, offset);
    v = IS_MAX ? max_(v, o) : v + o;
  }
  if (lane == 0) slots[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = (lane < n_warps) ? slots[lane] : (IS_MAX ? lowest_(v) : T(0));
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
      const T o = __shfl_xor_sync(0xffffffffu, v, offset);
      v = IS_MAX ? max_(v, o) : v + o;
    }
    if (lane == 0) slots[0] = v;
  }
  __syncthreads();
  const T total = slots[0];
  __syncthreads();  // the slots may be reused by the next call
  return total;
}

// The class a row reads and its weight (see the header); sets *bad for a valid target out of
// range.
template <typename T>
__device__ __forceinline__ T target_weight(long long raw, long long ignore_index, int C,
                                           const T* __restrict__ weight, int has_weight,
                                           long long& t, bool& valid) {
  valid = raw != ignore_index;
  const bool in_range = raw >= 0 && raw < C;
  t = valid && in_range ? raw : 0;
  if (!valid) return T(0);
  return has_weight ? weight[t] : T(1);
}

template <typename T>
__global__ void softmax_xent_fwd(const T* __restrict__ x, const long long* __restrict__ target,
                                 long long ignore_index, const T* __restrict__ weight,
                                 int has_weight, T* __restrict__ loss, T* __restrict__ lse,
                                 T* __restrict__ wt, T* __restrict__ w_total,
                                 unsigned char* __restrict__ bad, int N, int C, T eps) {
  __shared__ T slots[32];
  const int n = blockIdx.x;
  if (n >= N) return;
  const T* row = x + (long long)n * C;
  T m = lowest_(T(0));
  for (int c = threadIdx.x; c < C; c += blockDim.x) m = max_(m, row[c]);
  m = block_reduce<T, true>(m, slots);
  T s = T(0), wx = T(0), wsum = T(0);
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    const T shifted = row[c] - m;
    s += exp_(shifted);
    const T wc = has_weight ? weight[c] : T(1);
    wx += wc * shifted;
    wsum += wc;
  }
  s = block_reduce<T, false>(s, slots);
  if (eps != T(0)) {
    wx = block_reduce<T, false>(wx, slots);
    if (has_weight) wsum = block_reduce<T, false>(wsum, slots);
  }
  if (threadIdx.x == 0) {
    const T W = has_weight ? wsum : T(C);  // (only the smoothing term reads it)
    if (n == 0) w_total[0] = eps != T(0) ? W : T(0);
    const T log_s = log_(s);  // lse - max
    lse[n] = m + log_s;
    const long long raw = target[n];
    long long t;
    bool valid;
    const T w_t = target_weight(raw, ignore_index, C, weight, has_weight, t, valid);
    if (valid && (raw < 0 || raw >= C)) bad[0] = 1;  // every writer writes 1: no race
    wt[n] = w_t;
    if (!valid) {
      loss[n] = T(0);
    } else {
      T l = (T(1) - eps) * w_t * (log_s - (row[t] - m));
      if (eps != T(0)) l += eps / T(C) * (W * log_s - wx);
      loss[n] = l;
    }
  }
}

template <typename T>
__global__ void softmax_xent_bwd(const T* __restrict__ x, const T* __restrict__ lse,
                                 const long long* __restrict__ target, long long ignore_index,
                                 const T* __restrict__ weight, int has_weight,
                                 const T* __restrict__ w_total, const T* __restrict__ gy,
                                 int gy_stride, const T* __restrict__ denom, int mean,
                                 T* __restrict__ gx, int N, int C, T eps) {
  const long long total = (long long)N * C;
  const long long stride = (long long)blockDim.x * gridDim.x;
  const T W = w_total[0];
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int n = (int)(i / C), c = (int)(i % C);
    long long t;
    bool valid;
    const T w_t = target_weight(target[n], ignore_index, C, weight, has_weight, t, valid);
    if (!valid) {
      gx[i] = T(0);
      continue;
    }
    const T kn = mean ? gy[(long long)n * gy_stride] / denom[0] : gy[(long long)n * gy_stride];
    const T p = exp_(x[i] - lse[n]);
    const T wc = has_weight ? weight[c] : T(1);
    T g = ((T(1) - eps) * w_t + eps * W / T(C)) * p - eps * wc / T(C);
    if (c == t) g -= (T(1) - eps) * w_t;
    gx[i] = kn * g;
  }
}

#ifndef __CUDACC_RTC__  // nvcc (the compile check): instantiate what NVRTC gets by name
#define INSTANTIATE(T)                                                                         \
  template __global__ void softmax_xent_fwd<T>(const T*, const long long*, long long, const T*, \
                                               int, T*, T*, T*, T*, unsigned char*, int, int,  \
                                               T);                                             \
  template __global__ void softmax_xent_bwd<T>(const T*, const T*, const long long*, long long, \
                                               const T*, int, const T*, const T*, int,         \
                                               const T*, int, T*, int, int, T);
INSTANTIATE(float)
INSTANTIATE(double)
#endif
