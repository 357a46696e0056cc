// conv.cu: im2col and col2im, the data movement of the fused 2-d convolution (kernels/conv.py);
// the matrix products around them are cuBLAS GEMMs (CuPy's matmul).
//
// Computes, for x (N, C, H, W) and cols (C, kh, kw, N, Ho, Wo), both contiguous:
//   im2col:  cols[c, i, j, n, oh, ow] = x[n, c, oh*sh + i*dh - ph, ow*sw + j*dw - pw]
//            (0 where that row or column is outside x: the zero padding, never materialised);
//   col2im:  x[n, c, h, w] = sum of cols[c, i, j, n, oh, ow] over the (i, oh), (j, ow) with
//            h + ph = oh*sh + i*dh and w + pw = ow*sw + j*dw  (the adjoint of im2col: a conv's
//            input gradient, a transposed conv's output).
//
// Launch layout: 1-D grid-stride loops (kernels/_cuda.py grid_1d); im2col has one thread per
// entry of cols (consecutive threads write consecutive ow: coalesced stores), col2im one thread
// per pixel of x, which gathers its kh * kw terms itself: no atomics, a deterministic sum.
// Dtypes: T = float or double (template, instantiated through NVRTC name expressions); sizes
// are int, flat indices long long.
// Numerics: col2im adds its terms in the order (i, j) ascending, in T.

template <typename T>
__global__ void im2col(const T* __restrict__ x, T* __restrict__ cols, long long total, int N,
                       int C, int H, int W, int kh, int kw, int sh, int sw, int dh, int dw,
                       int ph, int pw, int Ho, int Wo) {
  const long long stride = (long long)blockDim.x * gridDim.x;
  for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += stride) {
    long long r = idx;
    const int ow = (int)(r % Wo); r /= Wo;
    const int oh = (int)(r % Ho); r /= Ho;
    const int n = (int)(r % N); r /= N;
    const int j = (int)(r % kw); r /= kw;
    const int i = (int)(r % kh);
    const int c = (int)(r / kh);
    const int h = oh * sh + i * dh - ph;
    const int w = ow * sw + j * dw - pw;
    T v = T(0);
    if (h >= 0 && h < H && w >= 0 && w < W) {
      v = x[(((long long)n * C + c) * H + h) * W + w];
    }
    cols[idx] = v;
  }
}

template <typename T>
__global__ void col2im(const T* __restrict__ cols, T* __restrict__ x, long long total, int N,
                       int C, int H, int W, int kh, int kw, int sh, int sw, int dh, int dw,
                       int ph, int pw, int Ho, int Wo) {
  const long long stride = (long long)blockDim.x * gridDim.x;
  const long long plane = (long long)Ho * Wo;
  for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += stride) {
    long long r = idx;
    const int w = (int)(r % W); r /= W;
    const int h = (int)(r % H); r /= H;
    const int c = (int)(r % C);
    const int n = (int)(r / C);
    T acc = T(0);
    for (int i = 0; i < kh; ++i) {
      const int oh_s = h + ph - i * dh;  // = oh * sh when offset i covers row h
      if (oh_s < 0 || oh_s % sh != 0 || oh_s / sh >= Ho) continue;
      const int oh = oh_s / sh;
      for (int j = 0; j < kw; ++j) {
        const int ow_s = w + pw - j * dw;
        if (ow_s < 0 || ow_s % sw != 0 || ow_s / sw >= Wo) continue;
        const int ow = ow_s / sw;
        const long long row = ((long long)(c * kh + i) * kw + j) * N + n;
        acc += cols[row * plane + (long long)oh * Wo + ow];
      }
    }
    x[idx] = acc;
  }
}

#ifndef __CUDACC_RTC__  // nvcc (the compile check): instantiate what NVRTC gets by name
template __global__ void im2col<float>(const float*, float*, long long, int, int, int, int, int,
                                       int, int, int, int, int, int, int, int, int);
template __global__ void im2col<double>(const double*, double*, long long, int, int, int, int,
                                        int, int, int, int, int, int, int, int, int, int);
template __global__ void col2im<float>(const float*, float*, long long, int, int, int, int, int,
                                       int, int, int, int, int, int, int, int, int);
template __global__ void col2im<double>(const double*, double*, long long, int, int, int, int,
                                        int, int, int, int, int, int, int, int, int, int);
#endif
