// RMSNorm (Qwen2 / Llama): y = weight * (x * rstd), rstd = 1 / sqrt(mean(x²) + eps) per row,
// forward and backward, fp32 math whatever the storage type.
//
// Numerics against Hugging Face: in fp32 the forward is HF's arithmetic in HF's order. In bf16 HF
// rounds x * rstd to bf16 before multiplying by the bf16 weight (two roundings); we keep x * rstd in
// fp32 and round y once, so bf16 outputs differ from HF's by up to ~1 bf16 ulp. The backward is the
// exact fp32 gradient of the fp32 forward (HF's bf16 autograd rounds its intermediates).
//
// Torch-free (see kernels/README.md): raw pointers, row-major contiguous [N, D] rows, a stream.
#pragma once
#include <cstdint>

#include "kernels/kernel_types.h"

namespace ovr::kernels {

// DType: of x, weight, y, dy, dx (F32, or BF16 stored as uint16_t on the CPU). rstd and dweight are fp32.
struct RmsNormForwardArgs {
  int64_t N = 0, D = 0;         // rows, row length (hidden size)
  DType dtype = DType::F32;
  const void* x = nullptr;      // [N, D]
  const void* weight = nullptr; // [D]
  void* y = nullptr;            // out [N, D]; may be x itself (in place)
  float* rstd = nullptr;        // out [N], optional: 1 / sqrt(mean(x²) + eps), what the backward needs
  float eps = 1e-6f;
};

// dx = rstd * (dy*w - x * rstd² * mean(dy*w*x)),  dweight = sum over rows of dy * x * rstd.
struct RmsNormBackwardArgs {
  int64_t N = 0, D = 0;
  DType dtype = DType::F32;
  const void* dy = nullptr;     // [N, D]
  const void* x = nullptr;      // [N, D], the forward's input
  const void* weight = nullptr; // [D]
  const float* rstd = nullptr;  // [N] from the forward
  void* dx = nullptr;           // out [N, D]; may be dy itself (in place)
  float* dweight = nullptr;     // out [D] fp32, optional (nullptr: not computed)
  bool accumulate = false;      // dweight: false overwrites, true adds (dx is always overwritten)
};

// `stream`: a cudaStream_t for Device::CUDA (nullptr: the default stream), ignored on the CPU.
// CUDA calls are asynchronous; the backward's dweight partial sums live in a cudaMallocAsync
// workspace of (resident blocks) x D floats, reduced in a fixed order (deterministic, no atomics).
// Errors: std::invalid_argument for bad sizes, missing pointers, Device::CUDA without CUDA;
// std::runtime_error for a failing CUDA call.
void rmsnorm_forward(Device device, const RmsNormForwardArgs& args, void* stream = nullptr);
void rmsnorm_backward(Device device, const RmsNormBackwardArgs& args, void* stream = nullptr);

// The implementations behind the dispatch, and the shared argument checks.
void rmsnorm_forward_cpu(const RmsNormForwardArgs& args);
void rmsnorm_backward_cpu(const RmsNormBackwardArgs& args);
void rmsnorm_forward_cuda(const RmsNormForwardArgs& args, void* stream);
void rmsnorm_backward_cuda(const RmsNormBackwardArgs& args, void* stream);
void check_rmsnorm_args(const RmsNormForwardArgs& args);
void check_rmsnorm_args(const RmsNormBackwardArgs& args);

}  // namespace ovr::kernels
