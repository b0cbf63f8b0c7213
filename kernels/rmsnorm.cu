// RMSNorm: the CUDA implementation. One block per row (grid-stride over rows), the row held in
// registers as 16-byte packs (up to kPacks per thread and 512 threads, so rows up to 2048 packs:
// D = 16384 in bf16, 8192 in fp32) between the reduction and the write, so x (and dy) are read from
// DRAM once. Longer rows fall back to reading the row twice (the second read mostly hits L2).
//
// dweight: each block sums dy * x * rstd over its rows in shared memory and writes one partial row;
// a second kernel adds the partial rows in a fixed order. No float atomics, so the result does not
// depend on scheduling: the same inputs give the same bits.
#define KERNEL_FAMILY "rmsnorm"
#include <algorithm>

#include "kernels/cuda_vec.cuh"
#include "kernels/rmsnorm.h"

namespace ovr::kernels {

namespace {

using cuda::aligned16;
using cuda::load;
using cuda::load_pack;
using cuda::Pack;
using cuda::store;
using cuda::unpack;

constexpr int kPacks = 4;  // packs per thread held in registers (the cached kernels' V)

// Block size bound of the kernels: the cached ones need more than the 64 registers a thread gets in
// a block of 1024, so they stop at 512 threads.
constexpr int max_threads(int V) { return V > 0 ? 512 : 1024; }

// Threads per row: as few as hold the row in kPacks packs each, in whole warps.
int threads_per_row(int nvec) {
  const int t = (nvec + kPacks - 1) / kPacks;
  return std::clamp((t + 31) / 32 * 32, 32, max_threads(kPacks));
}

// Sum over the block (blockDim.x a multiple of 32), in a fixed order; every thread gets the total.
__device__ float block_sum(float v, float* shared) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  __syncthreads();  // `shared` may still be read by the previous row's reduction
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < warps ? shared[lane] : 0.0f;
  // Every warp reduces the same values in the same order, so all threads agree without another sync.
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Copies w into shared memory once per block: every row reads all of it, and reads from shared
// memory can be hoisted above the row's global stores (which, as far as the compiler knows, could
// alias w in global memory and would then each wait on their own load).
template <class T, int W>
__device__ __forceinline__ void stage_weight(const T* w, T* w_smem, int nvec) {
  for (int c = threadIdx.x; c < nvec; c += blockDim.x)
    *reinterpret_cast<Pack<T, W>*>(w_smem + c * W) = load_pack<T, W>(w + c * W);
  __syncthreads();
}

// V > 0: each thread keeps its V packs of the row in registers; V == 0: the row is read twice.
// Dynamic shared memory: w (D elements).
template <class T, int W, int V>
__global__ void __launch_bounds__(max_threads(V))
    forward_kernel(const T* x, const T* w, T* y, float* rstd, int64_t N, int D, float eps) {
  __shared__ float shared[32];
  extern __shared__ __align__(16) unsigned char smem[];
  T* ws = reinterpret_cast<T*>(smem);
  const int nvec = D / W;
  stage_weight<T, W>(w, ws, nvec);
  for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
    const T* xr = x + row * D;
    T* yr = y + row * D;
    float ss = 0.0f;
    Pack<T, W> xs[V > 0 ? V : 1];
    if constexpr (V > 0) {
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const int c = threadIdx.x + k * blockDim.x;
        if (c < nvec) xs[k] = load_pack<T, W>(xr + c * W);
      }
#pragma unroll
      for (int k = 0; k < V; ++k) {
        if (threadIdx.x + k * blockDim.x >= nvec) continue;
        float f[W];
        unpack(xs[k], f);
#pragma unroll
        for (int i = 0; i < W; ++i) ss += f[i] * f[i];
      }
    } else {
      for (int c = threadIdx.x; c < nvec; c += blockDim.x) {
        float f[W];
        load<T, W>(xr + c * W, f);
#pragma unroll
        for (int i = 0; i < W; ++i) ss += f[i] * f[i];
      }
    }
    ss = block_sum(ss, shared);
    // IEEE sqrt and division rather than rsqrtf (2 ulp): cheap once per row, and it keeps us at the twin's value.
    const float r = 1.0f / sqrtf(ss / static_cast<float>(D) + eps);
    if (rstd && threadIdx.x == 0) rstd[row] = r;
    // y = w * (x * r): Hugging Face's order of the fp32 products.
    auto write = [&](int c, const Pack<T, W>& xp) {
      float f[W], g[W];
      unpack(xp, f);
      load<T, W>(ws + c * W, g);
#pragma unroll
      for (int i = 0; i < W; ++i) f[i] = g[i] * (f[i] * r);
      store<T, W>(yr + c * W, f);
    };
    if constexpr (V > 0) {
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const int c = threadIdx.x + k * blockDim.x;
        if (c < nvec) write(c, xs[k]);
      }
    } else {
      for (int c = threadIdx.x; c < nvec; c += blockDim.x) write(c, load_pack<T, W>(xr + c * W));
    }
  }
}

// One row's contribution at pack c: dx = r * (dy*w - x*cc), and dy * x * r added into acc (unless null).
template <class T, int W>
__device__ __forceinline__ void backward_pack(const Pack<T, W>& dyp, const Pack<T, W>& xp, const Pack<T, W>& wp, T* dxr,
                                              int c, float r, float cc, float* acc) {
  float g[W], xv[W], wv[W], d[W];
  unpack(dyp, g);
  unpack(xp, xv);
  unpack(wp, wv);
#pragma unroll
  for (int i = 0; i < W; ++i) {
    d[i] = r * (g[i] * wv[i] - xv[i] * cc);
    if (acc) acc[i] += g[i] * xv[i] * r;
  }
  store<T, W>(dxr + c * W, d);
}

template <class T, int W>
__device__ __forceinline__ float dot_pack(const Pack<T, W>& dyp, const Pack<T, W>& xp, const Pack<T, W>& wp) {
  float g[W], xv[W], wv[W], s = 0.0f;
  unpack(dyp, g);
  unpack(xp, xv);
  unpack(wp, wv);
#pragma unroll
  for (int i = 0; i < W; ++i) s += g[i] * wv[i] * xv[i];
  return s;
}

// partial: [gridDim.x, D], this block's row of dweight sums (nullptr: dweight not wanted).
// Dynamic shared memory: w (D elements, see stage_weight), then for the cached kernel D floats of
// dweight sums (also when dweight is not wanted, which keeps the code branch-free; each thread
// touches only its own columns, so no synchronisation), leaving the registers to the row's packs.
// The uncached kernel sums straight into its partial row.
template <class T, int W, int V>
__global__ void __launch_bounds__(max_threads(V)) backward_kernel(const T* dy, const T* x, const T* w, const float* rstd,
                                                                  T* dx, float* partial, int64_t N, int D) {
  __shared__ float shared[32];
  extern __shared__ __align__(16) unsigned char smem[];
  T* ws = reinterpret_cast<T*>(smem);
  float* acc_smem = reinterpret_cast<float*>(smem + (static_cast<size_t>(D) * sizeof(T) + 15) / 16 * 16);
  const int nvec = D / W;
  stage_weight<T, W>(w, ws, nvec);
  float* prow = partial ? partial + blockIdx.x * static_cast<int64_t>(D) : nullptr;
  float* acc = V > 0 ? acc_smem : prow;
  if (acc)
    for (int c = threadIdx.x; c < nvec; c += blockDim.x)
#pragma unroll
      for (int i = 0; i < W; ++i) acc[c * W + i] = 0.0f;
  for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
    const T* dyr = dy + row * D;
    const T* xr = x + row * D;
    T* dxr = dx + row * D;
    const float r = rstd[row];
    float dot = 0.0f;
    if constexpr (V > 0) {
      Pack<T, W> dys[V], xs[V];
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const int c = threadIdx.x + k * blockDim.x;
        if (c < nvec) dys[k] = load_pack<T, W>(dyr + c * W), xs[k] = load_pack<T, W>(xr + c * W);
      }
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const int c = threadIdx.x + k * blockDim.x;
        if (c < nvec) dot += dot_pack<T, W>(dys[k], xs[k], load_pack<T, W>(ws + c * W));
      }
      dot = block_sum(dot, shared);  // also orders every read of the row before any write (dx may be dy)
      const float cc = dot / static_cast<float>(D) * r * r;
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const int c = threadIdx.x + k * blockDim.x;
        if (c < nvec) backward_pack<T, W>(dys[k], xs[k], load_pack<T, W>(ws + c * W), dxr, c, r, cc, acc_smem + c * W);
      }
    } else {
      for (int c = threadIdx.x; c < nvec; c += blockDim.x)
        dot += dot_pack<T, W>(load_pack<T, W>(dyr + c * W), load_pack<T, W>(xr + c * W), load_pack<T, W>(ws + c * W));
      dot = block_sum(dot, shared);
      const float cc = dot / static_cast<float>(D) * r * r;
      for (int c = threadIdx.x; c < nvec; c += blockDim.x)
        backward_pack<T, W>(load_pack<T, W>(dyr + c * W), load_pack<T, W>(xr + c * W), load_pack<T, W>(ws + c * W), dxr,
                            c, r, cc, prow ? prow + c * W : nullptr);
    }
  }
  if (V > 0 && prow)
    for (int j = threadIdx.x * W; j < D; j += blockDim.x * W)
#pragma unroll
      for (int i = 0; i < W; ++i) prow[j + i] = acc[j + i];
}

constexpr int kSlices = 16;

// dweight[j] (+)= sum over g of partial[g][j]. Block (32, kSlices): 32 columns per block, slice y
// sums rows g = y, y + kSlices, ..., then the slices are added in order.
__global__ void sum_partials(const float* partial, int G, int D, float* dweight, bool accumulate) {
  __shared__ float s[kSlices][33];
  const int j = blockIdx.x * 32 + threadIdx.x;
  float acc = 0.0f;
  if (j < D)
    for (int g = threadIdx.y; g < G; g += kSlices) acc += partial[static_cast<int64_t>(g) * D + j];
  s[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y != 0 || j >= D) return;
  float t = 0.0f;
#pragma unroll
  for (int y = 0; y < kSlices; ++y) t += s[y][threadIdx.x];
  dweight[j] = accumulate ? dweight[j] + t : t;
}

// Dynamic shared memory above 48 KiB needs an opt-in per kernel.
template <class Kernel>
void allow_smem(Kernel kernel, size_t smem) {
  if (smem > 48 * 1024)
    OVR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
}

size_t padded(size_t bytes) { return (bytes + 15) / 16 * 16; }

template <class T, int W, int V>
void launch_forward(const RmsNormForwardArgs& a, int threads, cudaStream_t stream) {
  auto kernel = forward_kernel<T, W, V>;
  const size_t smem = padded(sizeof(T) * a.D);
  allow_smem(kernel, smem);
  const int grid = cuda::grid_size(kernel, threads, smem, a.N, 1);
  kernel<<<grid, threads, smem, stream>>>(static_cast<const T*>(a.x), static_cast<const T*>(a.weight),
                                          static_cast<T*>(a.y), a.rstd, a.N, static_cast<int>(a.D), a.eps);
  OVR_CUDA_LAUNCH_CHECK();
}

// Rows of up to kPacks * 512 packs stay in registers; longer ones take the kernel that reads them twice.
template <class T, int W>
void forward_packs(const RmsNormForwardArgs& a, int nvec, cudaStream_t stream) {
  const int threads = threads_per_row(nvec);
  if (nvec > kPacks * threads) return launch_forward<T, W, 0>(a, 1024, stream);
  launch_forward<T, W, kPacks>(a, threads, stream);
}

template <class T>
void forward_typed(const RmsNormForwardArgs& a, cudaStream_t stream) {
  constexpr int W = cuda::kVec<T>;
  if (a.D % W == 0 && aligned16(a.x) && aligned16(a.weight) && aligned16(a.y))
    return forward_packs<T, W>(a, static_cast<int>(a.D / W), stream);
  forward_packs<T, 1>(a, static_cast<int>(a.D), stream);
}

struct Workspace {
  cudaStream_t stream;
  void* p = nullptr;
  Workspace(size_t bytes, cudaStream_t st) : stream(st) { OVR_CUDA_CHECK(cudaMallocAsync(&p, bytes, stream)); }
  ~Workspace() {
    if (p) cudaFreeAsync(p, stream);
  }
};

template <class T, int W, int V>
void launch_backward(const RmsNormBackwardArgs& a, int threads, cudaStream_t stream) {
  auto kernel = backward_kernel<T, W, V>;
  const int D = static_cast<int>(a.D);
  const size_t smem = padded(sizeof(T) * D) + (V > 0 ? sizeof(float) * D : 0);
  allow_smem(kernel, smem);
  const int grid = cuda::grid_size(kernel, threads, smem, a.N, 1);
  float* partial = nullptr;
  Workspace ws(a.dweight ? sizeof(float) * static_cast<size_t>(grid) * D : 0, stream);
  if (a.dweight) partial = static_cast<float*>(ws.p);
  kernel<<<grid, threads, smem, stream>>>(static_cast<const T*>(a.dy), static_cast<const T*>(a.x),
                                       static_cast<const T*>(a.weight), a.rstd, static_cast<T*>(a.dx), partial, a.N, D);
  OVR_CUDA_LAUNCH_CHECK();
  if (!a.dweight) return;
  sum_partials<<<(D + 31) / 32, dim3(32, kSlices), 0, stream>>>(partial, grid, D, a.dweight, a.accumulate);
  OVR_CUDA_LAUNCH_CHECK();
}

template <class T, int W>
void backward_packs(const RmsNormBackwardArgs& a, int nvec, cudaStream_t stream) {
  const int threads = threads_per_row(nvec);
  if (nvec > kPacks * threads) return launch_backward<T, W, 0>(a, 1024, stream);
  launch_backward<T, W, kPacks>(a, threads, stream);
}

template <class T>
void backward_typed(const RmsNormBackwardArgs& a, cudaStream_t stream) {
  constexpr int W = cuda::kVec<T>;
  if (a.D % W == 0 && aligned16(a.dy) && aligned16(a.x) && aligned16(a.weight) && aligned16(a.dx))
    return backward_packs<T, W>(a, static_cast<int>(a.D / W), stream);
  backward_packs<T, 1>(a, static_cast<int>(a.D), stream);
}

}  // namespace

void rmsnorm_forward_cuda(const RmsNormForwardArgs& a, void* stream_ptr) {
  check_rmsnorm_args(a);
  if (a.N == 0) return;
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  if (a.dtype == DType::BF16) return forward_typed<__nv_bfloat16>(a, stream);
  forward_typed<float>(a, stream);
}

void rmsnorm_backward_cuda(const RmsNormBackwardArgs& a, void* stream_ptr) {
  check_rmsnorm_args(a);
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  if (a.N == 0) {
    if (a.dweight && !a.accumulate) OVR_CUDA_CHECK(cudaMemsetAsync(a.dweight, 0, sizeof(float) * a.D, stream));
    return;
  }
  if (a.dtype == DType::BF16) return backward_typed<__nv_bfloat16>(a, stream);
  backward_typed<float>(a, stream);
}

}  // namespace ovr::kernels
