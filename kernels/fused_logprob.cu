// Fused linear log-prob / entropy: the CUDA implementation (cuBLAS GEMM per tile + small kernels).
//
// Per tile: cuBLAS writes the fp32 logits [nt, nv] into a workspace, then one block per token
// folds the tile into the token's running (max, sum exp, sum exp·z) or, in the backward, turns it
// into d_logits, which two more GEMMs add into grad_hidden and grad_weight. Everything is enqueued
// on the caller's stream; the workspace comes from the stream-ordered allocator, so a call never
// synchronises the host. No torch headers here (see kernels/README.md).
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "fused_logprob.h"

namespace ovr::kernels {

namespace {

void cuda_check(cudaError_t e, const char* what, const char* file, int line) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("fused_logprob: ") + what + " failed at " + file + ":" + std::to_string(line) +
                             ": " + cudaGetErrorString(e));
}
void cublas_check(cublasStatus_t s, const char* what, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("fused_logprob: ") + what + " failed at " + file + ":" + std::to_string(line) +
                             ": " + cublasGetStatusString(s));
}
#define CUDA_CHECK(x) cuda_check((x), #x, __FILE__, __LINE__)
#define CUBLAS_CHECK(x) cublas_check((x), #x, __FILE__, __LINE__)

constexpr int kThreads = 256;

// One cuBLAS handle per thread and device: creating one costs far more than a small GEMM.
cublasHandle_t cublas_handle(cudaStream_t stream) {
  constexpr int kMaxDevices = 64;
  thread_local cublasHandle_t handles[kMaxDevices] = {};
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  if (dev < 0 || dev >= kMaxDevices) throw std::runtime_error("fused_logprob: device ordinal out of range");
  if (!handles[dev]) CUBLAS_CHECK(cublasCreate(&handles[dev]));
  CUBLAS_CHECK(cublasSetStream(handles[dev], stream));
  // Plain fp32 GEMMs (no TF32), so the CUDA results can be compared with the CPU twin.
  CUBLAS_CHECK(cublasSetMathMode(handles[dev], CUBLAS_DEFAULT_MATH));
  return handles[dev];
}

cudaDataType_t cuda_type(DType t) { return t == DType::BF16 ? CUDA_R_16BF : CUDA_R_32F; }
size_t elem_size(DType t) { return t == DType::BF16 ? 2 : 4; }

// cuBLAS is column-major; a row-major [r, c] matrix is a column-major [c, r] one. Hence:
//   row-major C[m, n] = A[m, k] · B[n, k]ᵀ  is  column-major Cᵀ = B · Aᵀ, i.e. gemm(T, N, n, m, k, B, A).
void gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n, int64_t k,
          const void* A, cudaDataType_t at, int64_t lda, const void* B, cudaDataType_t bt, int64_t ldb, float beta,
          float* C, int64_t ldc) {
  const float alpha = 1.0f;
  CUBLAS_CHECK(cublasGemmEx(h, ta, tb, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), &alpha, A, at,
                            static_cast<int>(lda), B, bt, static_cast<int>(ldb), &beta, C, CUDA_R_32F,
                            static_cast<int>(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// logits tile, row-major [nt, nv] = X[t0:t0+nt] · W[v0:v0+nv]ᵀ
void logits_tile(cublasHandle_t h, DType dt, const void* X, const void* W, int64_t nt, int64_t nv, int64_t H,
                 float* tile) {
  gemm(h, CUBLAS_OP_T, CUBLAS_OP_N, nv, nt, H, W, cuda_type(dt), H, X, cuda_type(dt), H, 0.0f, tile, nv);
}

__device__ float block_reduce(float v, bool is_max, float* shared) {
  for (int o = 16; o > 0; o >>= 1) {
    const float w = __shfl_xor_sync(0xffffffffu, v, o);
    v = is_max ? fmaxf(v, w) : v + w;
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();  // `shared` may still be read by a previous reduction
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  const int warps = blockDim.x >> 5;
  v = threadIdx.x < warps ? shared[threadIdx.x] : (is_max ? -INFINITY : 0.0f);
  if (warp == 0)
    for (int o = 16; o > 0; o >>= 1) {
      const float w = __shfl_xor_sync(0xffffffffu, v, o);
      v = is_max ? fmaxf(v, w) : v + w;
    }
  if (threadIdx.x == 0) shared[0] = v;
  __syncthreads();
  return shared[0];
}

// Per token i of the chunk (one block each): fold tile row i into the running max m, s = sum exp(z - m)
// and u = sum exp(z - m) z, and pick up z[target] when the target falls in this vocabulary chunk.
__global__ void fold_tile(const float* tile, int64_t nv, int64_t v0, const int64_t* targets, float* m, float* s,
                          float* u, float* zt, bool want_entropy) {
  __shared__ float shared[32];
  const int64_t i = blockIdx.x;
  const float* z = tile + i * nv;
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < nv; j += blockDim.x) mx = fmaxf(mx, z[j]);
  mx = block_reduce(mx, true, shared);
  const float m_new = fmaxf(m[i], mx);
  float si = 0.0f, ui = 0.0f;
  for (int64_t j = threadIdx.x; j < nv; j += blockDim.x) {
    const float e = expf(z[j] - m_new);
    si += e;
    if (want_entropy) ui += e * z[j];
  }
  si = block_reduce(si, false, shared);
  if (want_entropy) ui = block_reduce(ui, false, shared);
  if (threadIdx.x == 0) {
    const float r = expf(m[i] - m_new);  // 0 on the first tile (m = -inf)
    s[i] = s[i] * r + si;
    u[i] = u[i] * r + ui;
    m[i] = m_new;
    const int64_t y = targets[i];
    if (y >= v0 && y < v0 + nv) zt[i] = z[y - v0];
  }
}

__global__ void init_stats(int64_t nt, float* m, float* s, float* u, float* zt) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= nt) return;
  m[i] = -INFINITY;
  s[i] = 0.0f;
  u[i] = 0.0f;
  zt[i] = NAN;  // stays NaN when the target is outside [0, V): the GPU path does not throw
}

__global__ void finish_stats(int64_t nt, const float* m, const float* s, const float* u, const float* zt,
                             float* lse, float* logprob, float* entropy) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= nt) return;
  const float l = m[i] + logf(s[i]);
  lse[i] = l;
  logprob[i] = zt[i] - l;
  if (entropy) entropy[i] = l - u[i] / s[i];
}

// In place over the tile: z -> d_logits = g (onehot - p) - ge p (z - sum_j p_j z_j); with bf16 inputs
// also a bf16 copy for the two gradient GEMMs (cuBLAS wants A and B of one type).
__global__ void dlogits_tile(float* tile, __nv_bfloat16* tile_bf16, int64_t nv, int64_t v0, const int64_t* targets,
                             const float* lse, const float* entropy, const float* grad_logprob,
                             const float* grad_entropy) {
  const int64_t i = blockIdx.x;
  float* z = tile + i * nv;
  const float l = lse[i];
  const float g = grad_logprob ? grad_logprob[i] : 0.0f;
  const float ge = grad_entropy ? grad_entropy[i] : 0.0f;
  const float mean_z = ge != 0.0f ? l - entropy[i] : 0.0f;
  const int64_t y = targets[i];
  for (int64_t j = threadIdx.x; j < nv; j += blockDim.x) {
    const float p = expf(z[j] - l);
    float d = -p * (g + ge * (z[j] - mean_z));
    if (v0 + j == y) d += g;
    z[j] = d;
    if (tile_bf16) tile_bf16[i * nv + j] = __float2bfloat16(d);
  }
}

struct Workspace {
  cudaStream_t stream;
  void* p = nullptr;
  Workspace(size_t bytes, cudaStream_t st) : stream(st) { CUDA_CHECK(cudaMallocAsync(&p, bytes, stream)); }
  ~Workspace() {
    if (p) cudaFreeAsync(p, stream);
  }
};

int grid(int64_t n) { return static_cast<int>((n + kThreads - 1) / kThreads); }

}  // namespace

namespace {

// The forward of tokens [t0, t0 + nt): every vocabulary chunk's tile folded into the statistics
// `st` (4 * nt floats), then lse / logprob / entropy. Leaves the last tile in `tile`.
void forward_chunk(cublasHandle_t h, const LogprobForwardArgs& a, int64_t t0, int64_t nt, int64_t cV, float* tile,
                   float* st, cudaStream_t stream) {
  const int64_t V = a.V, H = a.H;
  const size_t es = elem_size(a.dtype);
  const auto* X = static_cast<const char*>(a.hidden) + t0 * H * es;
  const auto* W = static_cast<const char*>(a.weight);
  float *m = st, *s = m + nt, *u = s + nt, *zt = u + nt;
  init_stats<<<grid(nt), kThreads, 0, stream>>>(nt, m, s, u, zt);
  CUDA_CHECK(cudaGetLastError());
  for (int64_t v0 = 0; v0 < V; v0 += cV) {
    const int64_t nv = std::min(cV, V - v0);
    logits_tile(h, a.dtype, X, W + v0 * H * es, nt, nv, H, tile);
    fold_tile<<<static_cast<unsigned>(nt), kThreads, 0, stream>>>(tile, nv, v0, a.targets + t0, m, s, u, zt,
                                                                   a.entropy != nullptr);
    CUDA_CHECK(cudaGetLastError());
  }
  finish_stats<<<grid(nt), kThreads, 0, stream>>>(nt, m, s, u, zt, a.lse + t0, a.logprob + t0,
                                                  a.entropy ? a.entropy + t0 : nullptr);
  CUDA_CHECK(cudaGetLastError());
}

// Turns the logits tile of tokens [t0, t0 + nt) x vocabulary [v0, v0 + nv) into d_logits and adds
// its two products into the gradients.
void backward_tile(cublasHandle_t h, const LogprobBackwardArgs& a, int64_t t0, int64_t nt, int64_t v0, int64_t nv,
                   float* tile, __nv_bfloat16* tile_bf16, cudaStream_t stream) {
  const int64_t H = a.H;
  const size_t es = elem_size(a.dtype);
  const cudaDataType_t ct = cuda_type(a.dtype);
  const void* Xc = static_cast<const char*>(a.hidden) + t0 * H * es;
  const void* Wc = static_cast<const char*>(a.weight) + v0 * H * es;
  dlogits_tile<<<static_cast<unsigned>(nt), kThreads, 0, stream>>>(
      tile, tile_bf16, nv, v0, a.targets + t0, a.lse + t0, a.entropy ? a.entropy + t0 : nullptr,
      a.grad_logprob ? a.grad_logprob + t0 : nullptr, a.grad_entropy ? a.grad_entropy + t0 : nullptr);
  CUDA_CHECK(cudaGetLastError());
  const void* D = tile_bf16 ? static_cast<const void*>(tile_bf16) : static_cast<const void*>(tile);
  // row-major grad_hidden[nt, H] += D[nt, nv] · W[nv, H]: column-major gXᵀ[H, nt] += Wᵀ[H, nv] · Dᵀ[nv, nt]
  if (a.grad_hidden) gemm(h, CUBLAS_OP_N, CUBLAS_OP_N, H, nt, nv, Wc, ct, H, D, ct, nv, 1.0f, a.grad_hidden + t0 * H, H);
  // row-major grad_weight[nv, H] += Dᵀ[nv, nt] · X[nt, H]: column-major gWᵀ[H, nv] += Xᵀ[H, nt] · D[nt, nv]
  if (a.grad_weight) gemm(h, CUBLAS_OP_N, CUBLAS_OP_T, H, nv, nt, Xc, ct, H, D, ct, nv, 1.0f, a.grad_weight + v0 * H, H);
}

void zero_grads(int64_t T, int64_t V, int64_t H, float* gX, float* gW, cudaStream_t stream) {
  if (gX) CUDA_CHECK(cudaMemsetAsync(gX, 0, sizeof(float) * static_cast<size_t>(T * H), stream));
  if (gW) CUDA_CHECK(cudaMemsetAsync(gW, 0, sizeof(float) * static_cast<size_t>(V * H), stream));
}

size_t round_up(size_t n) { return (n + 255) / 256 * 256; }  // keeps every part of a workspace aligned for cuBLAS

// Workspace of the backward: the fp32 tile, then (bf16 inputs) its bf16 copy at tile_bf16_offset.
size_t tile_bf16_offset(int64_t cT, int64_t cV) { return round_up(sizeof(float) * static_cast<size_t>(cT * cV)); }
size_t tile_bytes(int64_t cT, int64_t cV, DType dt) {
  return tile_bf16_offset(cT, cV) + (dt == DType::BF16 ? round_up(2 * static_cast<size_t>(cT * cV)) : 0);
}

}  // namespace

void fused_logprob_forward_cuda(const LogprobForwardArgs& a, void* stream_ptr) {
  check_forward_args(a);
  if (a.T == 0) return;
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  const int64_t cT = std::min(a.chunks.tokens, a.T), cV = std::min(a.chunks.vocab, a.V);
  cublasHandle_t h = cublas_handle(stream);
  Workspace ws(sizeof(float) * static_cast<size_t>(cT * cV + 4 * cT), stream);
  float* tile = static_cast<float*>(ws.p);
  for (int64_t t0 = 0; t0 < a.T; t0 += cT) forward_chunk(h, a, t0, std::min(cT, a.T - t0), cV, tile, tile + cT * cV, stream);
}

void fused_logprob_backward_cuda(const LogprobBackwardArgs& a, void* stream_ptr) {
  check_backward_args(a);
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  if (!a.accumulate) zero_grads(a.T, a.V, a.H, a.grad_hidden, a.grad_weight, stream);
  if (a.T == 0 || (!a.grad_hidden && !a.grad_weight) || (!a.grad_logprob && !a.grad_entropy)) return;
  const int64_t cT = std::min(a.chunks.tokens, a.T), cV = std::min(a.chunks.vocab, a.V);
  const bool bf16 = a.dtype == DType::BF16;
  cublasHandle_t h = cublas_handle(stream);
  Workspace ws(tile_bytes(cT, cV, a.dtype), stream);
  float* tile = static_cast<float*>(ws.p);
  auto* tile_bf16 = bf16 ? reinterpret_cast<__nv_bfloat16*>(static_cast<char*>(ws.p) + tile_bf16_offset(cT, cV)) : nullptr;
  const size_t es = elem_size(a.dtype);
  for (int64_t t0 = 0; t0 < a.T; t0 += cT) {
    const int64_t nt = std::min(cT, a.T - t0);
    for (int64_t v0 = 0; v0 < a.V; v0 += cV) {
      const int64_t nv = std::min(cV, a.V - v0);
      logits_tile(h, a.dtype, static_cast<const char*>(a.hidden) + t0 * a.H * es,
                  static_cast<const char*>(a.weight) + v0 * a.H * es, nt, nv, a.H, tile);
      backward_tile(h, a, t0, nt, v0, nv, tile, tile_bf16, stream);
    }
  }
}

void fused_logprob_forward_backward_cuda(const LogprobForwardArgs& f, const LogprobGrads& g, void* stream_ptr) {
  LogprobBackwardArgs b = backward_args(f, g);
  check_forward_args(f);
  check_backward_args(b);
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  const bool backward = (g.grad_hidden || g.grad_weight) && (g.grad_logprob || g.grad_entropy);
  if (!backward || f.chunks.vocab < f.V) {  // recompute anyway: the two calls do the same work
    fused_logprob_forward_cuda(f, stream_ptr);
    return fused_logprob_backward_cuda(b, stream_ptr);
  }
  if (!g.accumulate) zero_grads(f.T, f.V, f.H, g.grad_hidden, g.grad_weight, stream);
  if (f.T == 0) return;
  // One tile holds a token chunk's logits over the whole vocabulary: no recompute.
  const int64_t cT = std::min(f.chunks.tokens, f.T), V = f.V;
  const bool bf16 = f.dtype == DType::BF16;
  cublasHandle_t h = cublas_handle(stream);
  const size_t tb = tile_bytes(cT, V, f.dtype);
  Workspace ws(tb + sizeof(float) * 4 * static_cast<size_t>(cT), stream);
  float* tile = static_cast<float*>(ws.p);
  auto* tile_bf16 = bf16 ? reinterpret_cast<__nv_bfloat16*>(static_cast<char*>(ws.p) + tile_bf16_offset(cT, V)) : nullptr;
  float* st = reinterpret_cast<float*>(static_cast<char*>(ws.p) + tb);
  for (int64_t t0 = 0; t0 < f.T; t0 += cT) {
    const int64_t nt = std::min(cT, f.T - t0);
    forward_chunk(h, f, t0, nt, V, tile, st, stream);
    backward_tile(h, b, t0, nt, 0, V, tile, tile_bf16, stream);
  }
}

}  // namespace ovr::kernels
