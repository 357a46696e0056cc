// softmax_cross_entropy.cu: fused softmax cross-entropy from (N, C) logits and class indices.
//
// Computes, per row n (x contiguous (N, C); t = target[n], already 0 where ignored; valid[n] = 0
// for an ignored target; w = class weights, all ones without; W = sum_c w_c; eps = smoothing):
//   lse_n  = max_n + log(sum_c exp(x_nc - max_n))
//   loss_n = valid ? (1 - eps) w_t (lse_n - x_nt) + eps/C (W lse_n - sum_c w_c x_nc) : 0
//   (softmax_xent_fwd writes loss_n and lse_n; the reduction is done by the launcher)
//   dx_nc  = k_n [((1 - eps) w_t + eps W / C) p_nc - (1 - eps) w_t [c == t] - eps w_c / C],
//   p_nc = exp(x_nc - lse_n), k_n = upstream gradient of loss_n (0 where ignored)
//   (softmax_xent_bwd: p recomputed from x and lse, so no (N, C) buffer is kept)
//
// Launch layout: fwd: one block per row (grid N), blockDim a multiple of 32 up to 256
// (kernels/_cuda.py rows_block), each thread striding over the row; block max and sums by warp
// shuffles and one shared slot per warp. bwd: a 1-D grid-stride loop over the N * C entries.
// Dtypes: T = float or double; targets int64; valid flags uint8.
// Numerics: max-shifted (online over the row: the max is found first), so logits of 1e4 give
// finite losses and gradients; the sums of w_c x_nc use the max-shifted logits as well.

__device__ __forceinline__ float exp_(float x) { return expf(x); }
__device__ __forceinline__ double exp_(double x) { return exp(x); }
__device__ __forceinline__ float log_(float x) { return logf(x); }
__device__ __forceinline__ double log_(double x) { return log(x); }
__device__ __forceinline__ float max_(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ double max_(double a, double b) { return fmax(a, b); }
__device__ __forceinline__ float lowest_(float) { return -3.402823466e38f; }
__device__ __forceinline__ double lowest_(double) { return -1.7976931348623157e308; }

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

template <typename T>
__global__ void softmax_xent_fwd(const T* __restrict__ x, const long long* __restrict__ target,
                                 const unsigned char* __restrict__ valid,
                                 const T* __restrict__ weight, T* __restrict__ loss,
                                 T* __restrict__ lse, int N, int C, T eps, T w_sum) {
  __shared__ T slots[32];
  const int n = blockIdx.x;
  if (n >= N) return;
  const T* row = x + (long long)n * C;
  T m = lowest_(T(0));
  for (int c = threadIdx.x; c < C; c += blockDim.x) m = max_(m, row[c]);
  m = block_reduce<T, true>(m, slots);
  T s = T(0), wx = T(0);
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    const T shifted = row[c] - m;
    s += exp_(shifted);
    wx += weight[c] * shifted;
  }
  s = block_reduce<T, false>(s, slots);
  if (eps != T(0)) wx = block_reduce<T, false>(wx, slots);
  if (threadIdx.x == 0) {
    const T log_s = log_(s);  // lse - max
    lse[n] = m + log_s;
    if (!valid[n]) {
      loss[n] = T(0);
    } else {
      const long long t = target[n];
      const T w_t = weight[t];
      T l = (T(1) - eps) * w_t * (log_s - (row[t] - m));
      if (eps != T(0)) l += eps / T(C) * (w_sum * log_s - wx);
      loss[n] = l;
    }
  }
}

template <typename T>
__global__ void softmax_xent_bwd(const T* __restrict__ x, const T* __restrict__ lse,
                                 const long long* __restrict__ target,
                                 const T* __restrict__ weight, const T* __restrict__ k,
                                 T* __restrict__ gx, int N, int C, T eps, T w_sum) {
  const long long total = (long long)N * C;
  const long long stride = (long long)blockDim.x * gridDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int n = (int)(i / C), c = (int)(i % C);
    const T kn = k[n];
    if (kn == T(0)) {
      gx[i] = T(0);
      continue;
    }
    const long long t = target[n];
    const T w_t = weight[t];
    const T p = exp_(x[i] - lse[n]);
    T g = ((T(1) - eps) * w_t + eps * w_sum / T(C)) * p - eps * weight[c] / T(C);
    if (c == t) g -= (T(1) - eps) * w_t;
    gx[i] = kn * g;
  }
}

#ifndef __CUDACC_RTC__  // nvcc (the compile check): instantiate what NVRTC gets by name
template __global__ void softmax_xent_fwd<float>(const float*, const long long*,
                                                 const unsigned char*, const float*, float*,
                                                 float*, int, int, float, float);
template __global__ void softmax_xent_fwd<double>(const double*, const long long*,
                                                  const unsigned char*, const double*, double*,
                                                  double*, int, int, double, double);
template __global__ void softmax_xent_bwd<float>(const float*, const float*, const long long*,
                                                 const float*, const float*, float*, int, int,
                                                 float, float);
template __global__ void softmax_xent_bwd<double>(const double*, const double*,
                                                  const long long*, const double*,
                                                  const double*, double*, int, int, double,
                                                  double);
#endif
