// dropout.cu: fused inverted dropout with the mask generated in the kernel (never stored).
//
// Computes, elementwise over a contiguous array of n values:
//   keep_i = [u_i >= p],  u_i = (philox(seed, i) >> 8) * 2^-24   (a float32 uniform in [0, 1))
//   forward:  y_i  = keep_i ? x_i  * scale : 0,   scale = 1 / (1 - p)
//   backward: dx_i = keep_i ? dy_i * scale : 0    (the same keep_i, regenerated from the seed)
// philox is Philox-4x32 with 10 rounds (Salmon et al., "Parallel random numbers: as easy as
// 1, 2, 3", SC'11): counter = (i low 32 bits, i high 32 bits, 0, 0), key = the two 31-bit
// seed words, first output word used. The seed lives in device memory (two int64 drawn from
// the device's generator), so a launch needs no host synchronisation.
//
// Launch layout: 1-D grid-stride loops (kernels/_cuda.py grid_1d); one thread per element per
// iteration. Dtypes: T = float or double; p is a float (the mask has float32 resolution).
// Numerics: a counter-based generator: the decision for element i depends only on (seed, i),
// so forward and backward agree for any launch geometry.

__device__ __forceinline__ unsigned int philox4x32_10(unsigned long long index,
                                                      unsigned int key0, unsigned int key1) {
  unsigned int c0 = (unsigned int)index, c1 = (unsigned int)(index >> 32), c2 = 0u, c3 = 0u;
  const unsigned int M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  const unsigned int W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
#pragma unroll
  for (int round = 0; round < 10; ++round) {
    const unsigned int hi0 = __umulhi(M0, c0), lo0 = M0 * c0;
    const unsigned int hi1 = __umulhi(M1, c2), lo1 = M1 * c2;
    c0 = hi1 ^ c1 ^ key0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ key1;
    c3 = lo0;
    key0 += W0;
    key1 += W1;
  }
  return c0;
}

__device__ __forceinline__ bool keep(long long i, const long long* seed, float p) {
  const unsigned int bits = philox4x32_10((unsigned long long)i, (unsigned int)seed[0],
                                          (unsigned int)seed[1]);
  const float u = (float)(bits >> 8) * (1.0f / 16777216.0f);
  return u >= p;
}

// dst = keep ? src * scale : 0 over a grid-stride loop: the forward on x, the backward on dy.
template <typename T>
__device__ __forceinline__ void scale_kept(const T* __restrict__ src, T* __restrict__ dst,
                                           long long n, const long long* __restrict__ seed,
                                           float p, T scale) {
  const long long stride = (long long)blockDim.x * gridDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    dst[i] = keep(i, seed, p) ? src[i] * scale : T(0);
  }
}

template <typename T>
__global__ void dropout_fwd(const T* __restrict__ x, T* __restrict__ y, long long n,
                            const long long* __restrict__ seed, float p, T scale) {
  scale_kept(x, y, n, seed, p, scale);
}

template <typename T>
__global__ void dropout_bwd(const T* __restrict__ gy, T* __restrict__ gx, long long n,
                            const long long* __restrict__ seed, float p, T scale) {
  scale_kept(gy, gx, n, seed, p, scale);
}

#ifndef __CUDACC_RTC__  // nvcc (the compile check): instantiate what NVRTC gets by name
template __global__ void dropout_fwd<float>(const float*, float*, long long, const long long*,
                                            float, float);
template __global__ void dropout_fwd<double>(const double*, double*, long long,
                                             const long long*, float, double);
template __global__ void dropout_bwd<float>(const float*, float*, long long, const long long*,
                                            float, float);
template __global__ void dropout_bwd<double>(const double*, double*, long long,
                                             const long long*, float, double);
#endif
