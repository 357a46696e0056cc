// gru.cu: the gate maths of one GRU time step, forward and backward, as one kernel each.
// The recurrent GEMMs run outside, through cuBLAS (CuPy matmul), one per step.
//
// Computes, for every batch row b and hidden unit j (gates in PyTorch's order r, z, n;
// p = h W_hh^T arrives from cuBLAS in `p` and gets b_hh added in place):
//   gru_step_fwd:  p += b_hh
//                  r = sigmoid(x_r + p_r);  z = sigmoid(x_z + p_z);  n = tanh(x_n + r p_n)
//                  h' = n + z (h - n);       padded rows (valid[b] = 0) keep h
//                  writes r, z (B, 2H), n (B, H) and h'
//   gru_step_bwd:  dh = dh_mm + dh_keep + gy[t]   (dh_mm = dp(t+1) W_hh, by cuBLAS)
//                  dn = dh (1 - z) (1 - n^2);  dz = dh (h - n) z (1 - z);  dr = dn p_n r (1 - r)
//                  dp = [dr, dz, dn r];  dx = [dr, dz, dn];  dh_keep <- dh z
//                  padded rows: dp = dx = 0, dh_keep <- dh
// The weight gradient is then ONE GEMM over all steps: dW_hh = dp_all^T h_prev_all.
// These are the steps of kernels/bptt.py (gru_forward, gru_backward), BPTT in plain NumPy.
//
// Launch layout: 1-D grid-stride loops over the B * H (row, unit) pairs (for_each_unit of
// _rnn.cuh; kernels/_cuda.py grid_1d); each thread owns the three gate columns of its unit.
// All arrays contiguous; the per-step ones are passed whole (T, ...) with the step index k (no
// per-step host views).
// Dtypes: T = float or double; valid flags uint8.
// Numerics: sigmoid(x) = 1 / (1 + exp(-x)) (overflow gives exactly 0), tanh from the math
// library: saturated gates stay finite.

#include "_math.cuh"  // exp_, tanh_, sigmoid_: float and double overloads
#include "_rnn.cuh"   // for_each_unit: the grid-stride loop over (row, unit) pairs

template <typename T>
__global__ void gru_step_fwd(const T* __restrict__ xs_all, T* __restrict__ ps,
                             const T* __restrict__ bias, T* hs,
                             const unsigned char* __restrict__ valid_all, T* __restrict__ rzs,
                             T* __restrict__ ns, int B, int H, int k) {
  const long long total = (long long)B * H;
  // step k of the (T, ...) buffers: the launcher passes whole buffers and k, no views
  const T* xs = xs_all + k * 3 * total;
  T* p = ps + k * 3 * total;
  const T* h_prev = hs + k * total;
  T* h_next = hs + (k + 1) * total;
  const unsigned char* valid = valid_all + (long long)k * B;
  T* rz = rzs + k * 2 * total;
  T* n_out = ns + k * total;
  for_each_unit(B, H, [&](long long idx, int b, int j) {
    const long long g0 = (long long)b * 3 * H + j;  // gate r of unit j in row b
    const T pr = p[g0] + bias[j];
    const T pz = p[g0 + H] + bias[H + j];
    const T pn = p[g0 + 2 * H] + bias[2 * H + j];
    p[g0] = pr;
    p[g0 + H] = pz;
    p[g0 + 2 * H] = pn;  // kept: the backward needs W_hn h + b_hn
    const T r = sigmoid_(xs[g0] + pr);
    const T z = sigmoid_(xs[g0 + H] + pz);
    const T nn = tanh_(xs[g0 + 2 * H] + r * pn);
    const T hp = h_prev[idx];
    rz[(long long)b * 2 * H + j] = r;
    rz[(long long)b * 2 * H + H + j] = z;
    n_out[idx] = nn;
    h_next[idx] = valid[b] ? nn + z * (hp - nn) : hp;
  });
}

template <typename T>
__global__ void gru_step_bwd(const T* __restrict__ dh_mm, T* __restrict__ dh_keep,
                             const T* __restrict__ gy_all, const T* __restrict__ ps,
                             const T* __restrict__ rzs, const T* __restrict__ ns,
                             const T* __restrict__ hs,
                             const unsigned char* __restrict__ valid_all,
                             T* __restrict__ dp_all, T* __restrict__ dx_all, int B, int H,
                             int k) {
  const long long total = (long long)B * H;
  const T* gy = gy_all + k * total;  // step k of the (T, ...) buffers
  const T* p = ps + k * 3 * total;
  const T* rz = rzs + k * 2 * total;
  const T* n_in = ns + k * total;
  const T* h_prev = hs + k * total;
  const unsigned char* valid = valid_all + (long long)k * B;
  T* dp = dp_all + k * 3 * total;
  T* dx = dx_all + k * 3 * total;
  for_each_unit(B, H, [&](long long idx, int b, int j) {
    const long long g0 = (long long)b * 3 * H + j;
    const T dh = dh_mm[idx] + dh_keep[idx] + gy[idx];
    if (!valid[b]) {  // padded: no gate gradient, dh passes to the step before
      dp[g0] = dp[g0 + H] = dp[g0 + 2 * H] = T(0);
      dx[g0] = dx[g0 + H] = dx[g0 + 2 * H] = T(0);
      dh_keep[idx] = dh;
      return;
    }
    const T r = rz[(long long)b * 2 * H + j], z = rz[(long long)b * 2 * H + H + j];
    const T nn = n_in[idx];
    const T dn = dh * (T(1) - z) * (T(1) - nn * nn);
    const T dz = dh * (h_prev[idx] - nn) * z * (T(1) - z);
    const T dr = dn * p[g0 + 2 * H] * r * (T(1) - r);
    dp[g0] = dr;
    dp[g0 + H] = dz;
    dp[g0 + 2 * H] = dn * r;
    dx[g0] = dr;
    dx[g0 + H] = dz;
    dx[g0 + 2 * H] = dn;
    dh_keep[idx] = dh * z;
  });
}

#ifndef __CUDACC_RTC__  // nvcc (the compile check): instantiate what NVRTC gets by name
#define INSTANTIATE(T)                                                                         \
  template __global__ void gru_step_fwd<T>(const T*, T*, const T*, T*, const unsigned char*,   \
                                           T*, T*, int, int, int);                             \
  template __global__ void gru_step_bwd<T>(const T*, T*, const T*, const T*, const T*,         \
                                           const T*, const T*, const unsigned char*, T*, T*,   \
                                           int, int, int);
INSTANTIATE(float)
INSTANTIATE(double)
#endif
