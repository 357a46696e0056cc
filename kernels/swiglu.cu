// swiglu.cu: fused SwiGLU gate, forward and backward.
//
// Computes, elementwise over contiguous arrays of n values (gate g, up u):
//   forward:  s = sigmoid(g) = 1 / (1 + exp(-g)),  y = g s u
//   backward: dg = dy u s (1 + g (1 - s)),  du = dy g s
// The backward recomputes s from g (one exp) instead of keeping it.
//
// Launch layout: 1-D grid-stride loops (kernels/_cuda.py grid_1d: 256 threads per block, at most
// 32 blocks per SM); one thread per element per iteration.
// Dtypes: T = float or double (template, instantiated through NVRTC name expressions).
// Numerics: exp(-g) overflows to inf for g << 0, which gives s = 0 and y = 0, dg = 0 (the
// limits); for g >> 0, s = 1 and y = g u. Inputs of 1e4 stay finite.

#include "_math.cuh"  // sigmoid_ (through exp_): float and double overloads

template <typename T>
__global__ void swiglu_fwd(const T* __restrict__ g, const T* __restrict__ u, T* __restrict__ y,
                           long long n) {
  const long long stride = (long long)blockDim.x * gridDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    const T gv = g[i];
    y[i] = gv * sigmoid_(gv) * u[i];
  }
}

template <typename T>
__global__ void swiglu_bwd(const T* __restrict__ gy, const T* __restrict__ g,
                           const T* __restrict__ u, T* __restrict__ gg, T* __restrict__ gu,
                           long long n) {
  const long long stride = (long long)blockDim.x * gridDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    const T gv = g[i];
    const T s = sigmoid_(gv);
    const T d = gy[i];
    gg[i] = d * u[i] * s * (T(1) + gv * (T(1) - s));
    gu[i] = d * gv * s;
  }
}

#ifndef __CUDACC_RTC__  // nvcc (the compile check): instantiate what NVRTC gets by name
template __global__ void swiglu_fwd<float>(const float*, const float*, float*, long long);
template __global__ void swiglu_fwd<double>(const double*, const double*, double*, long long);
template __global__ void swiglu_bwd<float>(const float*, const float*, const float*, float*,
                                           float*, long long);
template __global__ void swiglu_bwd<double>(const double*, const double*, const double*,
                                            double*, double*, long long);
#endif
