// Shared pieces of the memory-bound CUDA kernels (norm, activation, rotary): 16-byte packs loaded
// and stored as one access, fp32 <-> storage conversions, and grid sizing. Include only from .cu files.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "kernels/cuda_check.h"
#include "kernels/kernel_types.h"

namespace ovr::kernels::cuda {

// W consecutive elements moved as one access: W = 16 / sizeof(T) gives 128-bit loads and stores,
// which memory-bound kernels need to get near DRAM bandwidth; W = 1 is the fallback for sizes or
// pointers that are not 16-byte aligned.
template <class T, int W>
struct alignas(sizeof(T) * W) Pack {
  T v[W];
};

template <class T>
constexpr int kVec = 16 / sizeof(T);

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
template <class T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16(v); }  // RNE

template <class T, int W>
__device__ __forceinline__ Pack<T, W> load_pack(const T* p) { return *reinterpret_cast<const Pack<T, W>*>(p); }

template <class T, int W>
__device__ __forceinline__ void unpack(const Pack<T, W>& pk, float (&out)[W]) {
#pragma unroll
  for (int i = 0; i < W; ++i) out[i] = to_float(pk.v[i]);
}

template <class T, int W>
__device__ __forceinline__ void load(const T* p, float (&out)[W]) { unpack(load_pack<T, W>(p), out); }

template <class T, int W>
__device__ __forceinline__ void store(T* p, const float (&in)[W]) {
  Pack<T, W> pk;
#pragma unroll
  for (int i = 0; i < W; ++i) pk.v[i] = from_float<T>(in[i]);
  *reinterpret_cast<Pack<T, W>*>(p) = pk;
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Multiprocessors of the current device, cached: the attribute query is cheap but not free, and
// these kernels are launched several times per layer.
inline int sm_count() {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cache[kMaxDevices];
  int dev = 0;
  cuda_check(cudaGetDevice(&dev), "kernels", "cudaGetDevice", __FILE__, __LINE__);
  if (dev < 0 || dev >= kMaxDevices) return 132;
  int n = cache[dev].load(std::memory_order_relaxed);
  if (n == 0) {
    cuda_check(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev), "kernels",
               "cudaDeviceGetAttribute", __FILE__, __LINE__);
    cache[dev].store(n, std::memory_order_relaxed);
  }
  return n;
}

// Blocks for a grid-stride loop over `work` items of `per_block` each: all that can be resident at
// once (a full wave keeps enough loads in flight), never more than there is work for.
template <class Kernel>
int grid_size(Kernel kernel, int threads, size_t smem, int64_t work, int64_t per_block) {
  int per_sm = 0;
  cuda_check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem), "kernels",
             "cudaOccupancyMaxActiveBlocksPerMultiprocessor", __FILE__, __LINE__);
  const int64_t needed = (work + per_block - 1) / per_block;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(needed, int64_t{std::max(per_sm, 1)} * sm_count())));
}

}  // namespace ovr::kernels::cuda
