// layer_norm.cu: fused layer normalisation over the last D elements of each of N rows.
//
// Computes, per row n (x contiguous, (N, D)):
//   mu = sum(x) / D;  var = sum((x - mu)^2) / D (biased, as PyTorch);  r = 1 / sqrt(var + eps)
//   xhat = (x - mu) r;  y = xhat * w + b                     (layer_norm_fwd; keeps xhat, r)
//   dx = r (dy w - sum(dy w)/D - xhat sum(dy w xhat)/D)        (layer_norm_bwd_dx)
//   dw = sum_n dy xhat;  db = sum_n dy                         (layer_norm_bwd_dwdb)
// Without an affine weight or bias the launcher passes w = 1, b = 0.
//
// Launch layout: fwd and bwd_dx: one block per row (grid N), blockDim a multiple of 32 up to
// 256 (kernels/_cuda.py rows_block); each thread strides over the row's D elements; block sums
// by warp shuffles, then one shared slot per warp. bwd_dwdb: a 1-D grid-stride loop over the D
// columns, each thread summing its column over the N rows (adjacent threads read adjacent
// columns: coalesced).
// Dtypes: T = float or double; sums accumulate in T.
// Numerics: two passes over the row (mean, then the centred sum of squares), never
// E[x^2] - E[x]^2, so rows with a large mean (1e4) keep their variance.

#include "_math.cuh"  // rsqrt_ (float and double overloads), block_sum_

template <typename T>
__global__ void layer_norm_fwd(const T* __restrict__ x, const T* __restrict__ w,
                               const T* __restrict__ b, T* __restrict__ y, T* __restrict__ xhat,
                               T* __restrict__ rstd, int N, int D, T eps) {
  __shared__ T slots[32];
  const int n = blockIdx.x;
  if (n >= N) return;
  const T* row = x + (long long)n * D;
  T s = T(0);
  for (int d = threadIdx.x; d < D; d += blockDim.x) s += row[d];
  const T mean = block_sum_(s, slots) / T(D);
  T ss = T(0);
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    const T c = row[d] - mean;
    ss += c * c;
  }
  const T r = rsqrt_(block_sum_(ss, slots) / T(D) + eps);
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    const T h = (row[d] - mean) * r;
    xhat[(long long)n * D + d] = h;
    y[(long long)n * D + d] = h * w[d] + b[d];
  }
  if (threadIdx.x == 0) rstd[n] = r;
}

template <typename T>
__global__ void layer_norm_bwd_dx(const T* __restrict__ gy, const T* __restrict__ xhat,
                                  const T* __restrict__ rstd, const T* __restrict__ w,
                                  T* __restrict__ gx, int N, int D) {
  __shared__ T slots[32];
  const int n = blockIdx.x;
  if (n >= N) return;
  const long long base = (long long)n * D;
  T a = T(0), c = T(0);
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    const T gw = gy[base + d] * w[d];
    a += gw;
    c += gw * xhat[base + d];
  }
  a = block_sum_(a, slots) / T(D);
  c = block_sum_(c, slots) / T(D);
  const T r = rstd[n];
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    gx[base + d] = r * (gy[base + d] * w[d] - a - xhat[base + d] * c);
  }
}

template <typename T>
__global__ void layer_norm_bwd_dwdb(const T* __restrict__ gy, const T* __restrict__ xhat,
                                    T* __restrict__ gw, T* __restrict__ gb, int N, int D) {
  for (int d = blockIdx.x * blockDim.x + threadIdx.x; d < D; d += blockDim.x * gridDim.x) {
    T sw = T(0), sb = T(0);
    for (int n = 0; n < N; ++n) {
      const T g = gy[(long long)n * D + d];
      sw += g * xhat[(long long)n * D + d];
      sb += g;
    }
    gw[d] = sw;
    gb[d] = sb;
  }
}

#ifndef __CUDACC_RTC__  // nvcc (the compile check): instantiate what NVRTC gets by name
template __global__ void layer_norm_fwd<float>(const float*, const float*, const float*,
                                               float*, float*, float*, int, int, float);
template __global__ void layer_norm_fwd<double>(const double*, const double*, const double*,
                                                double*, double*, double*, int, int, double);
template __global__ void layer_norm_bwd_dx<float>(const float*, const float*, const float*,
                                                  const float*, float*, int, int);
template __global__ void layer_norm_bwd_dx<double>(const double*, const double*, const double*,
                                                   const double*, double*, int, int);
template __global__ void layer_norm_bwd_dwdb<float>(const float*, const float*, float*, float*,
                                                    int, int);
template __global__ void layer_norm_bwd_dwdb<double>(const double*, const double*, double*,
                                                     double*, int, int);
#endif
