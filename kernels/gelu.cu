// gelu.cu: fused GELU, exact or tanh-approximated, forward (output and derivative) and backward.
//
// Computes, elementwise over a contiguous array of n values:
//   exact:  y = x Phi(x),  dy/dx = Phi(x) + x phi(x),
//           Phi(x) = erfc(-x / sqrt 2) / 2,  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
//   tanh:   y = x/2 (1 + tanh u),  u = k (x + 0.044715 x^3),  k = sqrt(2 / pi),
//           dy/dx = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) k (1 + 3 * 0.044715 x^2)
//   backward: dx = dy * dy/dx (dy/dx kept by the forward: no second erf in the backward).
//
// Launch layout: 1-D grid-stride loops (kernels/_cuda.py grid_1d: 256 threads per block, at most
// 32 blocks per SM); one thread per element per iteration.
// Dtypes: T = float or double (template, instantiated through NVRTC name expressions).
// Numerics: Phi uses erfc (not 1 + erf), so the left tail keeps its relative accuracy; exp of a
// very negative argument underflows to 0, which gives y = 0 and dy/dx = 0 for x -> -inf and
// y = x, dy/dx = 1 for x -> +inf (inputs of 1e4 stay finite).

#include "_math.cuh"  // erfc_, exp_, tanh_: float and double overloads

template <typename T>
__global__ void gelu_fwd(const T* __restrict__ x, T* __restrict__ y, T* __restrict__ dydx,
                         long long n, int approximate_tanh) {
  const long long stride = (long long)blockDim.x * gridDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    const T v = x[i];
    if (approximate_tanh) {
      const T k = T(0.7978845608028654);  // sqrt(2 / pi)
      const T c = T(0.044715);
      const T th = tanh_(k * (v + c * v * v * v));
      const T half_1p = T(0.5) * (T(1) + th);
      y[i] = v * half_1p;
      dydx[i] = half_1p + T(0.5) * v * (T(1) - th * th) * k * (T(1) + T(3) * c * v * v);
    } else {
      const T cdf = T(0.5) * erfc_(-v * T(0.7071067811865476));
      const T pdf = exp_(T(-0.5) * v * v) * T(0.3989422804014327);
      y[i] = v * cdf;
      dydx[i] = cdf + v * pdf;
    }
  }
}

template <typename T>
__global__ void gelu_bwd(const T* __restrict__ gy, const T* __restrict__ dydx,
                         T* __restrict__ gx, long long n) {
  const long long stride = (long long)blockDim.x * gridDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    gx[i] = gy[i] * dydx[i];
  }
}

#ifndef __CUDACC_RTC__  // nvcc (the compile check): instantiate what NVRTC gets by name
template __global__ void gelu_fwd<float>(const float*, float*, float*, long long, int);
template __global__ void gelu_fwd<double>(const double*, double*, double*, long long, int);
template __global__ void gelu_bwd<float>(const float*, const float*, float*, long long);
template __global__ void gelu_bwd<double>(const double*, const double*, double*, long long);
#endif
