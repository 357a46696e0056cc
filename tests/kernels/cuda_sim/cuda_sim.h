// cuda_sim.h: compile a CUDA C kernel source as ordinary C++20 and run it on the CPU (tests).
//
// tests/kernels/cuda_sim.py builds one translation unit per (.cu source, template
// instantiations): this header, the source with its shared memory rewritten (`__shared__`
// arrays become `static`, `extern __shared__ x[]` a pointer to the launch's dynamic buffer),
// and one `extern "C"` entry point per instantiation. The entry points call cuda_sim_launch
// (runtime.cpp, compiled once), which runs the grid:
//   - the blocks one at a time, so that `static` stands for `__shared__`;
//   - the threads of a block as real threads, in parallel: __syncthreads() is a barrier of the
//     block's threads, __shfl_*_sync an exchange within a warp of 32 consecutive threads (a
//     barrier of the warp's threads around a per-warp buffer; the last warp may be partial).
// A thread that returns leaves the barriers, as an exited thread does on the GPU.
//
// What the hardware leaves undefined fails the launch with a message instead of giving some
// value: a shuffle that reads a lane that is not running (a partial warp, an exited thread)
// or that is outside the mask, threads of a block or warp meeting at different barriers, a
// write past the end of the dynamic shared memory, a barrier waiting past the timeout.
// Every block starts with its dynamic shared memory all ones (NaN), so that a read of what no
// thread wrote shows; static `__shared__` variables keep what the previous block left.
//
// Not simulated: atomics, warp votes, the memory model beyond the barriers (a data race is
// not reported; as the threads are real, it may show in the results), textures, and anything
// the kernels here do not use.

#pragma once

#include <math.h>  // the C++ <math.h>: float overloads of exp, log, ... as CUDA has them

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

// ---------------------------------------------------------------------------- the runtime
extern "C" {
// Runs body(args, idx) for every thread of every block; idx = threadIdx x, y, z, blockIdx
// x, y, z. Returns 0, or 1 with a message in `error`.
typedef void (*cuda_sim_body)(void** args, const unsigned* idx);
int cuda_sim_launch(const unsigned* grid, const unsigned* block, size_t shared_bytes,
                    cuda_sim_body body, void** args, double timeout_s, char* error,
                    size_t error_len);
void* cuda_sim_dynamic_shared(void);
void cuda_sim_syncthreads(int line);
// The value of lane `src` of the calling thread's warp (`bits`: the caller's value).
uint64_t cuda_sim_shuffle(uint64_t bits, unsigned mask, unsigned src, int line);
}

// ---------------------------------------------------------------------------- CUDA names
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
// the 16-byte vector types, aligned as CUDA's (a kernel that loads one from an address that
// is not a multiple of 16 faults on the GPU; here -fsanitize=alignment would report it)
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(16) double2 {
  double x, y;
};

static thread_local uint3 threadIdx, blockIdx;
static dim3 blockDim, gridDim;  // one launch at a time
static constexpr int warpSize = 32;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __align__(n) alignas(n)
#define __CUDACC_RTC__ 1  // as NVRTC: the sources' nvcc-only instantiations are left out
#define __syncthreads() cuda_sim_syncthreads(__LINE__)
#define __shfl_sync(...) ::cuda_sim::shfl_idx(__LINE__, __VA_ARGS__)
#define __shfl_xor_sync(...) ::cuda_sim::shfl_xor(__LINE__, __VA_ARGS__)
#define __shfl_down_sync(...) ::cuda_sim::shfl_down(__LINE__, __VA_ARGS__)
#define __shfl_up_sync(...) ::cuda_sim::shfl_up(__LINE__, __VA_ARGS__)

// ---------------------------------------------------------------------------- maths
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float rsqrt(float x) { return rsqrtf(x); }

#define CUDA_SIM_MIN_MAX(T)                          \
  inline T min(T a, T b) { return b < a ? b : a; } \
  inline T max(T a, T b) { return a < b ? b : a; }
CUDA_SIM_MIN_MAX(int)
CUDA_SIM_MIN_MAX(unsigned)
CUDA_SIM_MIN_MAX(long long)
CUDA_SIM_MIN_MAX(unsigned long long)
#undef CUDA_SIM_MIN_MAX
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }

inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline double __longlong_as_double(long long x) { return std::bit_cast<double>(x); }
inline long long __double_as_longlong(double x) { return std::bit_cast<long long>(x); }
inline unsigned __umulhi(unsigned a, unsigned b) {
  return (unsigned)(((unsigned long long)a * b) >> 32);
}

// ---------------------------------------------------------------------------- warps
namespace cuda_sim {

inline unsigned lane_id() {
  const unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  return t % 32u;
}

// Lane `src` of the warp gets the value; `src` follows CUDA's rules per variant, a lane
// outside the caller's group of `width` reads its own value.
template <typename T>
T shuffle(int line, unsigned mask, T v, unsigned src) {
  static_assert(sizeof(T) <= 8, "shuffles move at most 64 bits");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = cuda_sim_shuffle(bits, mask, src, line);
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}

template <typename T>
T shfl_xor(int line, unsigned mask, T v, int lane_mask, int width = 32) {
  const unsigned lane = lane_id(), group = lane / width * width;
  const unsigned src = lane ^ (unsigned)lane_mask;
  return shuffle(line, mask, v, src < group + width ? src : lane);
}

template <typename T>
T shfl_down(int line, unsigned mask, T v, unsigned delta, int width = 32) {
  const unsigned lane = lane_id(), group = lane / width * width;
  return shuffle(line, mask, v, lane + delta < group + width ? lane + delta : lane);
}

template <typename T>
T shfl_up(int line, unsigned mask, T v, unsigned delta, int width = 32) {
  const unsigned lane = lane_id(), group = lane / width * width;
  return shuffle(line, mask, v, lane >= group + delta ? lane - delta : lane);
}

template <typename T>
T shfl_idx(int line, unsigned mask, T v, int src_lane, int width = 32) {
  const unsigned lane = lane_id(), group = lane / width * width;
  return shuffle(line, mask, v, group + (unsigned)src_lane % width);
}

// ---------------------------------------------------------------------------- entry points

// Argument i of a launch, as the kernel's parameter type (args[i] points at the value).
template <typename T>
T arg(void** args, int i) {
  T value;
  std::memcpy(&value, args[i], sizeof(T));
  return value;
}

template <void (*KERNEL)(void**)>
void run_thread(void** args, const unsigned* idx) {
  threadIdx = {idx[0], idx[1], idx[2]};
  blockIdx = {idx[3], idx[4], idx[5]};
  KERNEL(args);
}

// What a generated entry point does: set the launch geometry, then run the grid.
template <void (*KERNEL)(void**)>
int launch(const unsigned* grid, const unsigned* block, size_t shared_bytes, void** args,
           double timeout_s, char* error, size_t error_len) {
  gridDim = {grid[0], grid[1], grid[2]};
  blockDim = {block[0], block[1], block[2]};
  return cuda_sim_launch(grid, block, shared_bytes, &run_thread<KERNEL>, args, timeout_s, error,
                         error_len);
}

}  // namespace cuda_sim
