// batch_norm.cu: fused batch normalisation with the batch's statistics, forward and backward.
//
// Computes, per channel c of x contiguous (N, C, L), over its M = N * L values:
//   mean = sum(x) / M;  var = sum((x - mean)^2) / M (biased);  r = 1 / sqrt(var + eps)
//   y = (x - mean) r w + b                        (batch_norm_fwd; keeps mean and r, gives var)
//   xhat = (x - mean) r;  dw = sum(dy xhat);  db = sum(dy)
//   dx = w r (dy - db/M - xhat dw/M) + dmean/M + dvar 2 xhat / (r M)     (batch_norm_bwd)
// Without an affine weight or bias the launcher passes w = 1, b = 0; dmean and dvar are the
// gradients of the statistics outputs (zeros unless used).
//
// Launch layout: one block per row, a row being one channel's M values (grid C), blockDim a
// multiple of 32 up to 256 (kernels/_cuda.py rows_block); each thread strides over the row
// (n = m / L, l = m % L); block sums by warp shuffles, then one shared slot per warp.
// Dtypes: T = float or double; sums accumulate in T.
// Numerics: two passes (mean, then the centred sum of squares), never E[x^2] - E[x]^2, so
// channels with a large mean keep their variance.

#include "_math.cuh"  // rsqrt_ (float and double overloads), block_sum_

// The offset of the m-th value of channel c (m = n * L + l).
__device__ __forceinline__ long long bn_at(int m, int c, int C, int L) {
  return ((long long)(m / L) * C + c) * L + (m % L);
}

template <typename T>
__global__ void batch_norm_fwd(const T* __restrict__ x, const T* __restrict__ w,
                               const T* __restrict__ b, T* __restrict__ y, T* __restrict__ mean,
                               T* __restrict__ var, T* __restrict__ rstd, int N, int C, int L,
                               T eps) {
  __shared__ T slots[32];
  const int c = blockIdx.x;
  if (c >= C) return;
  const int M = N * L;
  T s = T(0);
  for (int m = threadIdx.x; m < M; m += blockDim.x) s += x[bn_at(m, c, C, L)];
  const T mu = block_sum_(s, slots) / T(M);
  T ss = T(0);
  for (int m = threadIdx.x; m < M; m += blockDim.x) {
    const T d = x[bn_at(m, c, C, L)] - mu;
    ss += d * d;
  }
  const T v = block_sum_(ss, slots) / T(M);
  const T r = rsqrt_(v + eps);
  const T scale = r * w[c];
  for (int m = threadIdx.x; m < M; m += blockDim.x) {
    const long long i = bn_at(m, c, C, L);
    y[i] = (x[i] - mu) * scale + b[c];
  }
  if (threadIdx.x == 0) {
    mean[c] = mu;
    var[c] = v;
    rstd[c] = r;
  }
}

template <typename T>
__global__ void batch_norm_bwd(const T* __restrict__ x, const T* __restrict__ gy,
                               const T* __restrict__ mean, const T* __restrict__ rstd,
                               const T* __restrict__ w, const T* __restrict__ gmean,
                               const T* __restrict__ gvar, T* __restrict__ gx,
                               T* __restrict__ gw, T* __restrict__ gb, int N, int C, int L) {
  __shared__ T slots[32];
  const int c = blockIdx.x;
  if (c >= C) return;
  const int M = N * L;
  const T mu = mean[c], r = rstd[c];
  T sb = T(0), sw = T(0);
  for (int m = threadIdx.x; m < M; m += blockDim.x) {
    const long long i = bn_at(m, c, C, L);
    sb += gy[i];
    sw += gy[i] * (x[i] - mu) * r;
  }
  const T db = block_sum_(sb, slots);
  const T dw = block_sum_(sw, slots);
  const T inv_m = T(1) / T(M);
  const T scale = w[c] * r;
  const T add_mean = gmean[c] * inv_m;
  const T add_var = gvar[c] * T(2) * inv_m / r;
  for (int m = threadIdx.x; m < M; m += blockDim.x) {
    const long long i = bn_at(m, c, C, L);
    const T xhat = (x[i] - mu) * r;
    gx[i] = scale * (gy[i] - db * inv_m - xhat * dw * inv_m) + add_mean + add_var * xhat;
  }
  if (threadIdx.x == 0) {
    gw[c] = dw;
    gb[c] = db;
  }
}

#ifndef __CUDACC_RTC__  // nvcc (the compile check): instantiate what NVRTC gets by name
template __global__ void batch_norm_fwd<float>(const float*, const float*, const float*, float*,
                                               float*, float*, float*, int, int, int, float);
template __global__ void batch_norm_fwd<double>(const double*, const double*, const double*,
                                                double*, double*, double*, double*, int, int,
                                                int, double);
template __global__ void batch_norm_bwd<float>(const float*, const float*, const float*,
                                               const float*, const float*, const float*,
                                               const float*, float*, float*, float*, int, int,
                                               int);
template __global__ void batch_norm_bwd<double>(const double*, const double*, const double*,
                                                const double*, const double*, const double*,
                                                const double*, double*, double*, double*, int,
                                                int, int);
#endif
