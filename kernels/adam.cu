// adam.cu: fused multi-tensor Adam / AdamW: every parameter of a group in one launch.
//
// Computes, for every element i of the group's flat moment buffers m, v (and v_max), the
// element k = i - offsets[j] of parameter j (offsets[j] <= i < offsets[j + 1]):
//   theta <- theta (1 - lr wd)                                  AdamW (flags & 2)
//   g     <- wd theta + g   (wd theta - g with maximize)         Adam with weight decay
//   g     <- -g                                                  maximize (flags & 1)
//   m     <- m + (1 - beta1) (g - m)
//   v     <- beta2 v + (1 - beta2) g g;  v_max <- max(v_max, v)  amsgrad (flags & 4)
//   theta <- theta - step_size m / (sqrt(v or v_max) / bc2_sqrt + eps)
// with step_size = lr / (1 - beta1^t) and bc2_sqrt = sqrt(1 - beta2^t) computed on the host,
// and so are 1 - beta1 and 1 - beta2 (in float32, 1 - 0.999f has a relative error of 1e-5).
// Parameters and gradients are read through tables of device pointers (p_ptrs, g_ptrs), so
// neither is packed; each must be contiguous (the launcher checks, else falls back).
//
// Launch layout: a 1-D grid-stride loop over the `total` elements of the group
// (kernels/_cuda.py grid_1d); each element finds its parameter by binary search in `offsets`
// (n_tensors + 1 int64 entries; log2(n_tensors) steps, the table stays in cache).
// Dtypes: T = float or double for parameters, gradients, moments and the scalars.
// Numerics: the reference's operations in its order (PyTorch's lerp_, mul_/addcmul_, sqrt,
// division by bc2_sqrt, + eps, addcdiv_); the compiler may fuse multiply-adds, so float32
// results agree with the NumPy path to rounding, not bit for bit.

#include "_math.cuh"  // sqrt_, max_: float and double overloads

template <typename T>
__global__ void adam_multi_tensor(const unsigned long long* __restrict__ p_ptrs,
                                  const unsigned long long* __restrict__ g_ptrs,
                                  const long long* __restrict__ offsets, int n_tensors,
                                  T* __restrict__ m, T* __restrict__ v, T* __restrict__ v_max,
                                  long long total, T lr, T one_minus_beta1, T beta2,
                                  T one_minus_beta2, T eps, T wd, T step_size, T bc2_sqrt,
                                  int flags) {
  const bool maximize = flags & 1, decoupled = flags & 2, amsgrad = flags & 4;
  const long long stride = (long long)blockDim.x * gridDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    int lo = 0, hi = n_tensors;  // offsets[lo] <= i < offsets[hi]
    while (hi - lo > 1) {
      const int mid = (lo + hi) >> 1;
      if (offsets[mid] <= i) lo = mid; else hi = mid;
    }
    T* p = reinterpret_cast<T*>(p_ptrs[lo]);
    const T* gp = reinterpret_cast<const T*>(g_ptrs[lo]);
    const long long k = i - offsets[lo];
    T theta = p[k];
    T g = gp[k];
    if (wd != T(0) && decoupled) theta *= T(1) - lr * wd;
    if (wd != T(0) && !decoupled) {
      g = maximize ? theta * wd - g : theta * wd + g;
    } else if (maximize) {
      g = -g;
    }
    const T mi = m[i] + one_minus_beta1 * (g - m[i]);
    const T vi = beta2 * v[i] + one_minus_beta2 * g * g;
    m[i] = mi;
    v[i] = vi;
    T vv = vi;
    if (amsgrad) {
      vv = max_(v_max[i], vi);
      v_max[i] = vv;
    }
    const T denom = sqrt_(vv) / bc2_sqrt + eps;
    p[k] = theta - step_size * (mi / denom);
  }
}

#ifndef __CUDACC_RTC__  // nvcc (the compile check): instantiate what NVRTC gets by name
template __global__ void adam_multi_tensor<float>(const unsigned long long*,
                                                  const unsigned long long*, const long long*,
                                                  int, float*, float*, float*, long long, float,
                                                  float, float, float, float, float, float, float,
                                                  int);
template __global__ void adam_multi_tensor<double>(const unsigned long long*,
                                                   const unsigned long long*, const long long*,
                                                   int, double*, double*, double*, long long,
                                                   double, double, double, double, double,
                                                   double, double, double, int);
#endif
