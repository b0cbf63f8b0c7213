// Fused AdamW: the CUDA implementation. Memory-bound: 16-byte loads and stores over a grid-stride
// loop (a scalar tail, or a scalar loop when a pointer is not 16-byte aligned), one pass per step.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "adamw.h"
#define KERNEL_FAMILY "adamw"
#include "cuda_check.h"

namespace ovr::kernels {

namespace {

constexpr int kThreads = 256;
// Fixed, not derived from the device: the sum of squares must come out the same on any GPU.
constexpr int kSumBlocks = 1024;

template <class T>
__device__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Block sum in a fixed order (deterministic). Result valid in thread 0.
__device__ double block_sum(double v) {
  __shared__ double warp_totals[32];
  v = warp_sum(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warp_totals[warp] = v;
  __syncthreads();
  v = threadIdx.x < (blockDim.x >> 5) ? warp_totals[threadIdx.x] : 0.0;
  if (warp == 0) v = warp_sum(v);
  return v;
}

__global__ void sum_squares_partial(const float* __restrict__ g, int64_t n, bool vec4, double* __restrict__ partial) {
  double acc = 0;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  int64_t start = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t tail = 0;
  if (vec4) {
    const float4* g4 = reinterpret_cast<const float4*>(g);
    for (int64_t i = start; i < n / 4; i += stride) {
      const float4 x = g4[i];
      acc += double(x.x) * x.x + double(x.y) * x.y + double(x.z) * x.z + double(x.w) * x.w;
    }
    tail = n / 4 * 4;
  }
  for (int64_t i = tail + start; i < n; i += stride) acc += double(g[i]) * g[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void sum_partials(const double* __restrict__ partial, int count, double* __restrict__ out) {
  double acc = 0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) *out = acc;
}


// Written with explicit roundings so that the result does not depend on what the compiler contracts:
// a + alpha*b is one FMA, as in LibTorch's CUDA add / addcmul / addcdiv kernels.
__device__ __forceinline__ float adamw_one(float& p, float& m, float& v, float g, const AdamWScalars& s) {
  g = __fmul_rn(g, s.grad_scale);
  p = __fmul_rn(p, s.decay);
  m = __fmaf_rn(s.one_minus_beta1, g, __fmul_rn(m, s.beta1));
  v = __fmaf_rn(__fmul_rn(s.one_minus_beta2, g), g, __fmul_rn(v, s.beta2));
  const float denom = __fadd_rn(__fmul_rn(__fsqrt_rn(v), s.inv_sqrt_bias2), s.eps);
  p = __fmaf_rn(s.step_size, __fdiv_rn(m, denom), p);
  return p;
}

template <class Out>
__device__ __forceinline__ void store_param(Out* out, int64_t i, float p);
template <>
__device__ __forceinline__ void store_param<float>(float* out, int64_t i, float p) {
  out[i] = p;
}
template <>
__device__ __forceinline__ void store_param<__nv_bfloat16>(__nv_bfloat16* out, int64_t i, float p) {
  out[i] = __float2bfloat16_rn(p);
}

// Out = void: no param_out.
template <class Out>
__global__ void __launch_bounds__(kThreads) adamw_kernel(int64_t n, float* __restrict__ master, float* __restrict__ exp_avg,
                                                       float* __restrict__ exp_avg_sq, const float* __restrict__ grad,
                                                       Out* __restrict__ out, AdamWScalars s, bool vec4) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t start = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t tail = 0;
  if (vec4) {
    auto* p4 = reinterpret_cast<float4*>(master);
    auto* m4 = reinterpret_cast<float4*>(exp_avg);
    auto* v4 = reinterpret_cast<float4*>(exp_avg_sq);
    const auto* g4 = reinterpret_cast<const float4*>(grad);
    for (int64_t i = start; i < n / 4; i += stride) {
      float4 p = p4[i], m = m4[i], v = v4[i];
      const float4 g = __ldcs(g4 + i);  // read once: streaming, keep it out of L2's way
      adamw_one(p.x, m.x, v.x, g.x, s);
      adamw_one(p.y, m.y, v.y, g.y, s);
      adamw_one(p.z, m.z, v.z, g.z, s);
      adamw_one(p.w, m.w, v.w, g.w, s);
      p4[i] = p, m4[i] = m, v4[i] = v;
      if constexpr (std::is_same_v<Out, float>) {
        reinterpret_cast<float4*>(out)[i] = p;
      } else if constexpr (std::is_same_v<Out, __nv_bfloat16>) {
        // 4 bf16 = 8 bytes in one store
        __nv_bfloat162 lo = __floats2bfloat162_rn(p.x, p.y), hi = __floats2bfloat162_rn(p.z, p.w);
        uint2 packed;
        packed.x = *reinterpret_cast<uint32_t*>(&lo);
        packed.y = *reinterpret_cast<uint32_t*>(&hi);
        reinterpret_cast<uint2*>(out)[i] = packed;
      }
    }
    tail = n / 4 * 4;
  }
  for (int64_t i = tail + start; i < n; i += stride) {
    float p = master[i], m = exp_avg[i], v = exp_avg_sq[i];
    adamw_one(p, m, v, grad[i], s);
    master[i] = p, exp_avg[i] = m, exp_avg_sq[i] = v;
    if constexpr (!std::is_same_v<Out, void>) store_param(out, i, p);
  }
}

bool aligned(const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

// Enough blocks to fill the device a few times over; the grid-stride loop does the rest.
int grid_for(int64_t items) {
  static int sms = [] {
    int dev = 0, n = 0;
    OVR_CUDA_CHECK(cudaGetDevice(&dev));
    OVR_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
    return n;
  }();
  const int64_t need = (items + kThreads - 1) / kThreads;
  return int(std::max<int64_t>(1, std::min<int64_t>(need, int64_t(sms) * 8)));
}

}  // namespace

void grad_sum_squares_cuda(const float* grad, int64_t n, double* out, void* stream_ptr) {
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  if (n == 0) {
    OVR_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(double), stream));
    return;
  }
  double* partial = nullptr;
  OVR_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&partial), sizeof(double) * kSumBlocks, stream));
  const int64_t blocks_needed = (n / 4 + kThreads - 1) / kThreads;
  const int blocks = int(std::max<int64_t>(1, std::min<int64_t>(kSumBlocks, blocks_needed)));
  sum_squares_partial<<<blocks, kThreads, 0, stream>>>(grad, n, aligned(grad, 16), partial);
  OVR_CUDA_LAUNCH_CHECK();
  sum_partials<<<1, kThreads, 0, stream>>>(partial, blocks, out);
  OVR_CUDA_LAUNCH_CHECK();
  OVR_CUDA_CHECK(cudaFreeAsync(partial, stream));
}

void adamw_step_cuda(const AdamWArgs& a, void* stream_ptr) {
  check_adamw_args(a);
  if (a.n == 0) return;
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  const AdamWScalars s = adamw_scalars(a);
  const bool bf16 = a.param_dtype == DType::BF16;
  const bool vec4 = aligned(a.master, 16) && aligned(a.exp_avg, 16) && aligned(a.exp_avg_sq, 16) &&
                    aligned(a.grad, 16) && (!a.param_out || aligned(a.param_out, bf16 ? 8 : 16));
  const int grid = grid_for(vec4 ? a.n / 4 + 1 : a.n);
  if (!a.param_out)
    adamw_kernel<void><<<grid, kThreads, 0, stream>>>(a.n, a.master, a.exp_avg, a.exp_avg_sq, a.grad, nullptr, s, vec4);
  else if (bf16)
    adamw_kernel<__nv_bfloat16><<<grid, kThreads, 0, stream>>>(a.n, a.master, a.exp_avg, a.exp_avg_sq, a.grad,
                                                                 static_cast<__nv_bfloat16*>(a.param_out), s, vec4);
  else
    adamw_kernel<float><<<grid, kThreads, 0, stream>>>(a.n, a.master, a.exp_avg, a.exp_avg_sq, a.grad,
                                                         static_cast<float*>(a.param_out), s, vec4);
  OVR_CUDA_LAUNCH_CHECK();
}

}  // namespace ovr::kernels
