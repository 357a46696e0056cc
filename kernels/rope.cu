// rope.cu: fused rotary position embedding (transformers' rotate_half layout), fwd and bwd.
//
// Computes, for x of shape (B, H, T, D) and cos, sin of shape (B, T, D), all contiguous, with
// half = D / 2, x1 = x[..., :half], x2 = x[..., half:] (c, s the matching cos/sin entries):
//   forward:  y[..., :half] = x1 c - x2 s;   y[..., half:] = x2 c + x1 s
//   backward: gx[..., :half] = g1 c + g2 s';  gx[..., half:] = g2 c - g1 s'
// where s' is sin at the partner position (the transpose of rotate_half).
//
// Launch layout: 1-D grid-stride loops (kernels/_cuda.py grid_1d: 256 threads per block, at most
// 32 blocks per SM); one thread per element per iteration.
// Dtypes: T = float or double (template, instantiated through NVRTC name expressions).
// Numerics: two products and a sum per element, as the reference (no cancellation beyond it).

template <typename T>
__global__ void rope_fwd(const T* __restrict__ x, const T* __restrict__ cs,
                         const T* __restrict__ sn, T* __restrict__ y, long long n, int H,
                         int Tn, int D) {
  const long long stride = (long long)blockDim.x * gridDim.x;
  const int half = D / 2;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int d = (int)(i % D);
    const long long t = (i / D) % Tn;
    const long long b = i / ((long long)D * Tn * H);
    const long long j = (b * Tn + t) * D + d;
    const T partner = d < half ? -x[i + half] : x[i - half];
    y[i] = x[i] * cs[j] + partner * sn[j];
  }
}

template <typename T>
__global__ void rope_bwd(const T* __restrict__ g, const T* __restrict__ cs,
                         const T* __restrict__ sn, T* __restrict__ gx, long long n, int H,
                         int Tn, int D) {
  const long long stride = (long long)blockDim.x * gridDim.x;
  const int half = D / 2;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int d = (int)(i % D);
    const long long t = (i / D) % Tn;
    const long long b = i / ((long long)D * Tn * H);
    const long long j = (b * Tn + t) * D + d;
    const T partner = d < half ? g[i + half] * sn[j + half] : -g[i - half] * sn[j - half];
    gx[i] = g[i] * cs[j] + partner;
  }
}

#ifndef __CUDACC_RTC__  // nvcc (the compile check): instantiate what NVRTC gets by name
template __global__ void rope_fwd<float>(const float*, const float*, const float*, float*,
                                         long long, int, int, int);
template __global__ void rope_fwd<double>(const double*, const double*, const double*, double*,
                                          long long, int, int, int);
template __global__ void rope_bwd<float>(const float*, const float*, const float*, float*,
                                         long long, int, int, int);
template __global__ void rope_bwd<double>(const double*, const double*, const double*, double*,
                                          long long, int, int, int);
#endif
