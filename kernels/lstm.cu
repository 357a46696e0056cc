// lstm.cu: the gate maths of one LSTM time step, forward and backward, as one kernel each.
// The recurrent GEMMs run outside, through cuBLAS (CuPy matmul), one per step.
//
// Computes, for every batch row b and hidden unit j (gates in PyTorch's order i, f, g, o;
// a = x_proj[t] + h W_hh^T + b_hh, the launcher passes x_proj[t] and hw = h W_hh^T apart):
//   lstm_step_fwd:  i, f, o = sigmoid(a_i, a_f, a_o);  g = tanh(a_g)
//                   c' = f c + i g;  h' = o tanh(c');   padded rows (valid[b] = 0) keep c, h
//                   writes the activations (B, 4H), c', h' and tanh(c') for the backward
//   lstm_step_bwd:  dh = dh_mm + dh_keep + gy[t]   (dh_mm = da(t+1) W_hh, by cuBLAS)
//                   dc_t = dc + dh o (1 - tanh^2 c')
//                   da = [dc_t g i(1-i), dc_t c f(1-f), dc_t i (1-g^2), dh tanh(c') o(1-o)]
//                   dc <- dc_t f;  dh_keep <- 0
//                   padded rows: da = 0, dc unchanged, dh_keep <- dh (passes to the step before)
// The weight gradient is then ONE GEMM over all steps: dW_hh = da_all^T h_prev_all.
// These are the steps of kernels/bptt.py (lstm_forward, lstm_backward), BPTT in plain NumPy.
//
// Launch layout: 1-D grid-stride loops over the B * H (row, unit) pairs (for_each_unit of
// _rnn.cuh; kernels/_cuda.py grid_1d); each thread reads and writes the four gate columns of
// its unit, so no two threads touch the same element. All arrays contiguous, row-major; the
// per-step ones are passed whole (T, ...) with the step index k (no per-step host views).
// Dtypes: T = float or double; valid flags uint8.
// Numerics: sigmoid(x) = 1 / (1 + exp(-x)) (exp overflow gives exactly 0), tanh from the math
// library: saturated gates (pre-activations of 1e4) stay finite.

#include "_math.cuh"  // exp_, tanh_, sigmoid_: float and double overloads
#include "_rnn.cuh"   // for_each_unit: the grid-stride loop over (row, unit) pairs

template <typename T>
__global__ void lstm_step_fwd(const T* __restrict__ xs_all, const T* __restrict__ hw,
                              const T* __restrict__ bias, T* cs, T* hs,
                              const unsigned char* __restrict__ valid_all,
                              T* __restrict__ acts_all, T* __restrict__ tcs, int B, int H,
                              int k) {
  const long long n = (long long)B * H;
  // step k of the (T, ...) buffers: the launcher passes whole buffers and k, no views
  const T* xs = xs_all + k * 4 * n;
  T* acts = acts_all + k * 4 * n;
  const T* c_prev = cs + k * n;
  T* c_next = cs + (k + 1) * n;
  const T* h_prev = hs + k * n;
  T* h_next = hs + (k + 1) * n;
  T* tanh_c = tcs + k * n;
  const unsigned char* valid = valid_all + (long long)k * B;
  for_each_unit(B, H, [&](long long idx, int b, int j) {
    const long long g0 = (long long)b * 4 * H + j;  // gate i of unit j in row b
    const T ai = xs[g0] + hw[g0] + bias[j];
    const T af = xs[g0 + H] + hw[g0 + H] + bias[H + j];
    const T ag = xs[g0 + 2 * H] + hw[g0 + 2 * H] + bias[2 * H + j];
    const T ao = xs[g0 + 3 * H] + hw[g0 + 3 * H] + bias[3 * H + j];
    const T i = sigmoid_(ai), f = sigmoid_(af), g = tanh_(ag), o = sigmoid_(ao);
    acts[g0] = i;
    acts[g0 + H] = f;
    acts[g0 + 2 * H] = g;
    acts[g0 + 3 * H] = o;
    T c = f * c_prev[idx] + i * g;
    const T tc = tanh_(c);
    T h = o * tc;
    if (!valid[b]) {  // a padded step keeps the state
      c = c_prev[idx];
      h = h_prev[idx];
    }
    c_next[idx] = c;
    h_next[idx] = h;
    tanh_c[idx] = tc;
  });
}

template <typename T>
__global__ void lstm_step_bwd(const T* __restrict__ dh_mm, T* __restrict__ dh_keep,
                              const T* __restrict__ gy_all, const T* __restrict__ acts_all,
                              const T* __restrict__ cs, const T* __restrict__ tcs,
                              const unsigned char* __restrict__ valid_all, T* __restrict__ dc,
                              T* __restrict__ da_all, int B, int H, int k) {
  const long long n = (long long)B * H;
  const T* gy = gy_all + k * n;  // step k of the (T, ...) buffers
  const T* acts = acts_all + k * 4 * n;
  const T* c_prev = cs + k * n;
  const T* tanh_c = tcs + k * n;
  const unsigned char* valid = valid_all + (long long)k * B;
  T* da = da_all + k * 4 * n;
  for_each_unit(B, H, [&](long long idx, int b, int j) {
    const long long g0 = (long long)b * 4 * H + j;
    const T dh = dh_mm[idx] + dh_keep[idx] + gy[idx];
    if (!valid[b]) {  // padded: no gate gradient, dh and dc pass to the step before
      da[g0] = da[g0 + H] = da[g0 + 2 * H] = da[g0 + 3 * H] = T(0);
      dh_keep[idx] = dh;
      return;
    }
    const T i = acts[g0], f = acts[g0 + H], g = acts[g0 + 2 * H], o = acts[g0 + 3 * H];
    const T tc = tanh_c[idx];
    const T dct = dc[idx] + dh * o * (T(1) - tc * tc);
    da[g0] = dct * g * i * (T(1) - i);
    da[g0 + H] = dct * c_prev[idx] * f * (T(1) - f);
    da[g0 + 2 * H] = dct * i * (T(1) - g * g);
    da[g0 + 3 * H] = dh * tc * o * (T(1) - o);
    dc[idx] = dct * f;
    dh_keep[idx] = T(0);
  });
}

#ifndef __CUDACC_RTC__  // nvcc (the compile check): instantiate what NVRTC gets by name
#define INSTANTIATE(T)                                                                         \
  template __global__ void lstm_step_fwd<T>(const T*, const T*, const T*, T*, T*,              \
                                            const unsigned char*, T*, T*, int, int, int);      \
  template __global__ void lstm_step_bwd<T>(const T*, T*, const T*, const T*, const T*,        \
                                            const T*, const unsigned char*, T*, T*, int, int,  \
                                            int);
INSTANTIATE(float)
INSTANTIATE(double)
#endif
