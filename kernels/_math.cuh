// _math.cuh: float and double overloads of the math functions the kernels use, so that a
// kernel templated on T calls exp_(x), tanh_(x), ... and gets expf or exp by T; and the block
// sum (warp shuffles, then one shared slot per warp) of the kernels that give a block a row.
//
// A .cu that needs them opens with `#include "_math.cuh"`. nvcc resolves that line itself;
// for NVRTC (CuPy) and the CUDA simulator, kernels/_cuda.py source() puts this file's text in
// its place, so they compile one self-contained source (and CuPy's cache key covers it).
// Nothing here is a kernel: no templates are instantiated unless a kernel calls them.

// NAME(x) for a float and for a double: the math library's float function (expf) or its
// double one (exp), picked by the argument's type.
#define FLOAT_AND_DOUBLE(NAME, F, D)                                 \
  __device__ __forceinline__ float NAME(float x) { return F(x); }   \
  __device__ __forceinline__ double NAME(double x) { return D(x); }
FLOAT_AND_DOUBLE(exp_, expf, exp)
FLOAT_AND_DOUBLE(log_, logf, log)
FLOAT_AND_DOUBLE(tanh_, tanhf, tanh)
FLOAT_AND_DOUBLE(erfc_, erfcf, erfc)
FLOAT_AND_DOUBLE(sqrt_, sqrtf, sqrt)
FLOAT_AND_DOUBLE(rsqrt_, rsqrtf, rsqrt)
#undef FLOAT_AND_DOUBLE

__device__ __forceinline__ float max_(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ double max_(double a, double b) { return fmax(a, b); }
__device__ __forceinline__ float fma_(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ double fma_(double a, double b, double c) { return fma(a, b, c); }
__device__ __forceinline__ float inf_(float) { return __int_as_float(0x7f800000); }
__device__ __forceinline__ double inf_(double) {
  return __longlong_as_double(0x7ff0000000000000LL);
}
__device__ __forceinline__ float lowest_(float) { return -3.402823466e38f; }
__device__ __forceinline__ double lowest_(double) { return -1.7976931348623157e308; }

// sigmoid(x) = 1 / (1 + exp(-x)): exp overflow for x << 0 gives exactly 0, never nan.
template <typename T>
__device__ __forceinline__ T sigmoid_(T x) { return T(1) / (T(1) + exp_(-x)); }

// The sum of v over the warp, returned to every lane.
template <typename T>
__device__ __forceinline__ T warp_sum_(T v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// The sum of v over the block, returned to every thread. `slots` holds one value per warp
// (`__shared__ T slots[32]`); blockDim.x is a multiple of 32.
template <typename T>
__device__ T block_sum_(T v, T* slots) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int n_warps = (blockDim.x + 31) >> 5;
  v = warp_sum_(v);
  if (lane == 0) slots[warp] = v;
  __syncthreads();
  v = (threadIdx.x < n_warps) ? slots[threadIdx.x] : T(0);
  if (warp == 0) v = warp_sum_(v);
  if (threadIdx.x == 0) slots[0] = v;
  __syncthreads();
  const T total = slots[0];
  __syncthreads();  // the slots may be reused by the next call
  return total;
}
