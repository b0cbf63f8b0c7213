// SwiGLU: the CUDA implementation. Element-wise and memory-bound: 16-byte packs in a grid-stride
// loop, the n % W elements past the last whole pack done one by one; W = 1 when a pointer is not
// 16-byte aligned.
#define KERNEL_FAMILY "swiglu"
#include "kernels/cuda_vec.cuh"
#include "kernels/swiglu.h"

namespace ovr::kernels {

namespace {

using cuda::aligned16;
using cuda::load;
using cuda::store;

constexpr int kThreads = 256;

// expf, not __expf: the kernel is memory-bound, and the precise one keeps it at the CPU twin's value.
__device__ __forceinline__ float silu_mul(float g, float u) { return g / (1.0f + expf(-g)) * u; }

template <class T, int W>
__global__ void forward_kernel(const T* gate, const T* up, T* y, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t packs = n / W;
  for (int64_t p = tid; p < packs; p += stride) {
    float g[W], u[W];
    load<T, W>(gate + p * W, g);
    load<T, W>(up + p * W, u);
#pragma unroll
    for (int i = 0; i < W; ++i) g[i] = silu_mul(g[i], u[i]);
    store<T, W>(y + p * W, g);
  }
  const int64_t i = packs * W + tid;  // the tail
  if (i < n) {
    float g[1], u[1];
    load<T, 1>(gate + i, g);
    load<T, 1>(up + i, u);
    g[0] = silu_mul(g[0], u[0]);
    store<T, 1>(y + i, g);
  }
}

__device__ __forceinline__ void backward_one(float d, float g, float u, float& dg, float& du) {
  const float e1 = 1.0f + expf(-g), s = 1.0f / e1;
  dg = d * u * s * (1.0f + g * (1.0f - s));  // LibTorch's order: silu_backward(dy * up, g)
  du = d * (g / e1);
}

template <class T, int W>
__global__ void backward_kernel(const T* dy, const T* gate, const T* up, T* d_gate, T* d_up, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t packs = n / W;
  for (int64_t p = tid; p < packs; p += stride) {
    float d[W], g[W], u[W];
    load<T, W>(dy + p * W, d);
    load<T, W>(gate + p * W, g);
    load<T, W>(up + p * W, u);
#pragma unroll
    for (int i = 0; i < W; ++i) backward_one(d[i], g[i], u[i], g[i], u[i]);
    store<T, W>(d_gate + p * W, g);
    store<T, W>(d_up + p * W, u);
  }
  const int64_t i = packs * W + tid;
  if (i < n) {
    float d[1], g[1], u[1];
    load<T, 1>(dy + i, d);
    load<T, 1>(gate + i, g);
    load<T, 1>(up + i, u);
    backward_one(d[0], g[0], u[0], g[0], u[0]);
    store<T, 1>(d_gate + i, g);
    store<T, 1>(d_up + i, u);
  }
}

template <class T, int W>
void launch_forward(const SwiGluForwardArgs& a, cudaStream_t stream) {
  auto kernel = forward_kernel<T, W>;
  const int grid = cuda::grid_size(kernel, kThreads, 0, a.n / W + 1, kThreads);
  kernel<<<grid, kThreads, 0, stream>>>(static_cast<const T*>(a.gate), static_cast<const T*>(a.up),
                                        static_cast<T*>(a.y), a.n);
  OVR_CUDA_LAUNCH_CHECK();
}

template <class T, int W>
void launch_backward(const SwiGluBackwardArgs& a, cudaStream_t stream) {
  auto kernel = backward_kernel<T, W>;
  const int grid = cuda::grid_size(kernel, kThreads, 0, a.n / W + 1, kThreads);
  kernel<<<grid, kThreads, 0, stream>>>(static_cast<const T*>(a.dy), static_cast<const T*>(a.gate),
                                        static_cast<const T*>(a.up), static_cast<T*>(a.d_gate),
                                        static_cast<T*>(a.d_up), a.n);
  OVR_CUDA_LAUNCH_CHECK();
}

template <class T>
void forward_typed(const SwiGluForwardArgs& a, cudaStream_t stream) {
  if (aligned16(a.gate) && aligned16(a.up) && aligned16(a.y)) return launch_forward<T, cuda::kVec<T>>(a, stream);
  launch_forward<T, 1>(a, stream);
}

template <class T>
void backward_typed(const SwiGluBackwardArgs& a, cudaStream_t stream) {
  if (aligned16(a.dy) && aligned16(a.gate) && aligned16(a.up) && aligned16(a.d_gate) && aligned16(a.d_up))
    return launch_backward<T, cuda::kVec<T>>(a, stream);
  launch_backward<T, 1>(a, stream);
}

}  // namespace

void swiglu_forward_cuda(const SwiGluForwardArgs& a, void* stream_ptr) {
  check_swiglu_args(a);
  if (a.n == 0) return;
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  if (a.dtype == DType::BF16) return forward_typed<__nv_bfloat16>(a, stream);
  forward_typed<float>(a, stream);
}

void swiglu_backward_cuda(const SwiGluBackwardArgs& a, void* stream_ptr) {
  check_swiglu_args(a);
  if (a.n == 0) return;
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  if (a.dtype == DType::BF16) return backward_typed<__nv_bfloat16>(a, stream);
  backward_typed<float>(a, stream);
}

}  // namespace ovr::kernels
