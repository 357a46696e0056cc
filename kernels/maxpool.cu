// maxpool.cu: fused 2-D max pooling, forward (values and argmax indices) and backward.
//
// Computes, for x contiguous (N, C, H, W) and outputs (N, C, OH, OW):
//   y[n,c,i,j] = max over taps (a, b) of x[n, c, i*sh - ph + a*dh, j*sw - pw + b*dw]
//   idx[n,c,i,j] = h * W + w of that maximum, the position clipped into the input
//                                                                      (max_pool2d_fwd)
//   dx[n,c,h,w] = sum of dy[n,c,i,j] over the windows (i, j) with idx == h * W + w
//                                                                      (max_pool2d_bwd)
// Padding taps read -inf. The first maximum of a tie wins; a NaN wins over a number.
//
// Launch layout: 1-D grid-stride loops (kernels/_cuda.py grid_1d). fwd: one thread per output
// element, looping over the kh * kw taps. bwd: one thread per input element, looping over the
// output rows and columns whose windows can reach it (a gather: no atomics, a fixed order).
// Dtypes: T = float or double; indices long long (int64).
// Numerics: a maximum is exact; the backward sums in T, in output order.

#include "_math.cuh"  // inf_: float and double overloads

template <typename T>
__device__ __forceinline__ bool is_nan_(T v) {
  return v != v;
}

template <typename T>
__global__ void max_pool2d_fwd(const T* __restrict__ x, T* __restrict__ y,
                               long long* __restrict__ idx, long long n_out, int H, int W,
                               int OH, int OW, int kh, int kw, int sh, int sw, int ph, int pw,
                               int dh, int dw) {
  const long long stride = (long long)blockDim.x * gridDim.x;
  for (long long o = (long long)blockIdx.x * blockDim.x + threadIdx.x; o < n_out; o += stride) {
    const int j = (int)(o % OW);
    const int i = (int)((o / OW) % OH);
    const long long plane = o / ((long long)OH * OW);  // n * C + c
    const T* xs = x + plane * H * W;
    T best = T(0);
    long long best_at = 0;
    bool first = true;
    for (int a = 0; a < kh; ++a) {
      const int h = i * sh - ph + a * dh;
      const int hc = h < 0 ? 0 : (h >= H ? H - 1 : h);
      for (int b = 0; b < kw; ++b) {
        const int w = j * sw - pw + b * dw;
        const int wc = w < 0 ? 0 : (w >= W ? W - 1 : w);
        const bool inside = h >= 0 && h < H && w >= 0 && w < W;
        const T v = inside ? xs[(long long)h * W + w] : -inf_(T(0));
        if (first || v > best || (is_nan_(v) && !is_nan_(best))) {
          best = v;
          best_at = (long long)hc * W + wc;
          first = false;
        }
      }
    }
    y[o] = best;
    idx[o] = best_at;
  }
}

// The window indices [lo, hi] along one dimension that can hold position p of an input of
// size S (a clipped padding tap reaches the first and the last position from further away).
__device__ __forceinline__ void window_range(int p, int S, int O, int k, int s, int pad, int d,
                                             int* lo, int* hi) {
  int first = p + pad - d * (k - 1);  // i * s >= p + pad - d (k - 1)
  *lo = first <= 0 ? 0 : (first + s - 1) / s;
  *hi = (p + pad) / s;
  if (p == 0) *lo = 0;
  if (p == S - 1) *hi = O - 1;
  if (*hi > O - 1) *hi = O - 1;
}

template <typename T>
__global__ void max_pool2d_bwd(const T* __restrict__ gy, const long long* __restrict__ idx,
                               T* __restrict__ gx, long long n_in, int H, int W, int OH, int OW,
                               int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw) {
  const long long stride = (long long)blockDim.x * gridDim.x;
  for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < n_in; e += stride) {
    const int w = (int)(e % W);
    const int h = (int)((e / W) % H);
    const long long plane = e / ((long long)H * W);
    const long long here = (long long)h * W + w;
    int i0, i1, j0, j1;
    window_range(h, H, OH, kh, sh, ph, dh, &i0, &i1);
    window_range(w, W, OW, kw, sw, pw, dw, &j0, &j1);
    T sum = T(0);
    for (int i = i0; i <= i1; ++i) {
      for (int j = j0; j <= j1; ++j) {
        const long long o = plane * OH * OW + (long long)i * OW + j;
        if (idx[o] == here) sum += gy[o];
      }
    }
    gx[e] = sum;
  }
}

#ifndef __CUDACC_RTC__  // nvcc (the compile check): instantiate what NVRTC gets by name
template __global__ void max_pool2d_fwd<float>(const float*, float*, long long*, long long, int,
                                               int, int, int, int, int, int, int, int, int, int,
                                               int);
template __global__ void max_pool2d_fwd<double>(const double*, double*, long long*, long long,
                                                int, int, int, int, int, int, int, int, int, int,
                                                int, int);
template __global__ void max_pool2d_bwd<float>(const float*, const long long*, float*, long long,
                                               int, int, int, int, int, int, int, int, int, int,
                                               int, int);
template __global__ void max_pool2d_bwd<double>(const double*, const long long*, double*,
                                                long long, int, int, int, int, int, int, int,
                                                int, int, int, int, int);
#endif
