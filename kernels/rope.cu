// (M-)RoPE: the CUDA implementation. One thread per (token, W consecutive frequencies): it computes
// the W angles' cos and sin once (precise sincosf: angles reach ~5e4 rad, where __sincosf is
// useless) and applies them to that token's pairs in every head of q and then k, as 16-byte packs
// from both halves of each head. Sharing cos/sin across the 28 + 4 heads keeps the kernel
// memory-bound; one thread per pair would spend more time in sincosf than in DRAM.
#define KERNEL_FAMILY "rope"
#include "kernels/cuda_vec.cuh"
#include "kernels/rope.h"

namespace ovr::kernels {

namespace {

using cuda::aligned16;
using cuda::load;
using cuda::store;

constexpr int kThreads = 256;

struct Params {
  int64_t tokens;
  int heads_q, heads_k, head_dim, axes;
  int64_t s0, s1;  // mrope_section[0], [1]
  float theta, sign;
  const int64_t* positions;
};

constexpr int kHeadsPerBatch = 4;

// Loads kHeadsPerBatch heads' packs before storing any: `out` may alias `in` (in place), so the
// compiler may not move a later head's loads above an earlier head's stores by itself, and one
// head at a time would leave a single pair of loads in flight per thread. Each element is read and
// written by this thread only, so batching is safe in place.
template <class T, int W>
__device__ __forceinline__ void rotate_heads(const T* in, T* out, int heads, int head_dim, int i0, const float (&c)[W],
                                             const float (&s)[W]) {
  const int half = head_dim / 2;
  for (int h0 = 0; h0 < heads; h0 += kHeadsPerBatch) {
    float a[kHeadsPerBatch][W], b[kHeadsPerBatch][W];
#pragma unroll
    for (int j = 0; j < kHeadsPerBatch; ++j) {
      if (h0 + j >= heads) break;
      const int64_t o = static_cast<int64_t>(h0 + j) * head_dim + i0;
      load<T, W>(in + o, a[j]);
      load<T, W>(in + o + half, b[j]);
    }
#pragma unroll
    for (int j = 0; j < kHeadsPerBatch; ++j) {
      if (h0 + j >= heads) break;
      const int64_t o = static_cast<int64_t>(h0 + j) * head_dim + i0;
      float ya[W], yb[W];
#pragma unroll
      for (int w = 0; w < W; ++w) {
        ya[w] = a[j][w] * c[w] - b[j][w] * s[w];
        yb[w] = b[j][w] * c[w] + a[j][w] * s[w];
      }
      store<T, W>(out + o, ya);
      store<T, W>(out + o + half, yb);
    }
  }
}

// Grid-stride over tokens * (half / W) items. inv_freq goes to shared memory once per block.
template <class T, int W>
__global__ void rope_kernel(Params p, const T* q_in, T* q_out, const T* k_in, T* k_out) {
  extern __shared__ float inv_freq[];
  const int half = p.head_dim / 2;
  for (int i = threadIdx.x; i < half; i += blockDim.x) inv_freq[i] = rope_inv_freq(i, p.head_dim, p.theta);
  __syncthreads();
  const int groups = half / W;
  const int64_t items = p.tokens * groups;
  for (int64_t it = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; it < items;
       it += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = it / groups;
    const int i0 = static_cast<int>(it - t * groups) * W;
    // The token's position on each axis, read once (M-RoPE: a pack may straddle two sections).
    float pos[3];
#pragma unroll
    for (int ax = 0; ax < 3; ++ax) pos[ax] = ax < p.axes ? static_cast<float>(p.positions[ax * p.tokens + t]) : 0.0f;
    float c[W], s[W];
#pragma unroll
    for (int w = 0; w < W; ++w) {
      const int axis = rope_axis(i0 + w, p.axes, p.s0, p.s1);
      const float angle = (axis == 0 ? pos[0] : axis == 1 ? pos[1] : pos[2]) * inv_freq[i0 + w];
      sincosf(angle, &s[w], &c[w]);
      s[w] *= p.sign;
    }
    if (p.heads_q > 0)
      rotate_heads<T, W>(q_in + t * p.heads_q * p.head_dim, q_out + t * p.heads_q * p.head_dim, p.heads_q,
                         p.head_dim, i0, c, s);
    if (p.heads_k > 0)
      rotate_heads<T, W>(k_in + t * p.heads_k * p.head_dim, k_out + t * p.heads_k * p.head_dim, p.heads_k,
                         p.head_dim, i0, c, s);
  }
}

template <class T, int W>
void launch(const RopeArgs& a, const Params& p, cudaStream_t stream) {
  auto kernel = rope_kernel<T, W>;
  const size_t smem = sizeof(float) * static_cast<size_t>(a.head_dim / 2);
  const int grid = cuda::grid_size(kernel, kThreads, smem, a.tokens * (a.head_dim / 2 / W), kThreads);
  kernel<<<grid, kThreads, smem, stream>>>(p, static_cast<const T*>(a.q_in), static_cast<T*>(a.q_out),
                                           static_cast<const T*>(a.k_in), static_cast<T*>(a.k_out));
  OVR_CUDA_LAUNCH_CHECK();
}

template <class T>
void rope_typed(const RopeArgs& a, const Params& p, cudaStream_t stream) {
  constexpr int W = cuda::kVec<T>;
  // A missing q or k (0 heads) does not constrain the alignment.
  auto ok = [](int64_t heads, const void* in, const void* out) {
    return heads == 0 || (aligned16(in) && aligned16(out));
  };
  if ((a.head_dim / 2) % W == 0 && ok(a.heads_q, a.q_in, a.q_out) && ok(a.heads_k, a.k_in, a.k_out))
    return launch<T, W>(a, p, stream);
  launch<T, 1>(a, p, stream);
}

}  // namespace

void rope_cuda(const RopeArgs& a, float sign, void* stream_ptr) {
  check_rope_args(a);
  if (a.tokens == 0 || a.heads_q + a.heads_k == 0) return;
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  const Params p{a.tokens,
                 static_cast<int>(a.heads_q),
                 static_cast<int>(a.heads_k),
                 static_cast<int>(a.head_dim),
                 a.axes,
                 a.mrope_section[0],
                 a.mrope_section[1],
                 a.theta,
                 sign,
                 a.positions};
  if (a.dtype == DType::BF16) return rope_typed<__nv_bfloat16>(a, p, stream);
  rope_typed<float>(a, p, stream);
}

}  // namespace ovr::kernels
