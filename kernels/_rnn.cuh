// _rnn.cuh: what the LSTM and GRU step kernels (lstm.cu, gru.cu) share: their launch layout.
// Included by them as _math.cuh is (kernels/_cuda.py source() inlines it for NVRTC).

// Call body(idx, b, j) for each (batch row b, hidden unit j) of a step, idx = b * H + j, over a
// 1-D grid-stride loop (kernels/_cuda.py grid_1d). Each call handles the gate columns of its
// unit, so no two threads touch the same element.
template <typename Body>
__device__ __forceinline__ void for_each_unit(int B, int H, Body&& body) {
  const long long n = (long long)B * H;
  const long long stride = (long long)blockDim.x * gridDim.x;
  for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < n;
       idx += stride) {
    body(idx, (int)(idx / H), (int)(idx % H));
  }
}
