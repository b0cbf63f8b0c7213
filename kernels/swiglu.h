// SwiGLU (Qwen2's MLP activation): y = silu(gate) * up element-wise, forward and backward, fp32
// math whatever the storage type, rounded once.
//
// Numerics against Hugging Face: in bf16 HF rounds silu(gate) to bf16 before the product with up
// (two roundings); we round y once, so bf16 outputs differ from HF's by up to ~1 bf16 ulp. silu and
// its derivative use HF's formulas: silu(g) = g / (1 + exp(-g)), and with s = 1 / (1 + exp(-g)),
// silu'(g) = s (1 + g (1 - s)).
//
// Torch-free (see kernels/README.md): raw pointers over n contiguous elements, a stream.
#pragma once
#include <cstdint>

#include "kernels/kernel_types.h"

namespace ovr::kernels {

// DType: of every array (F32, or BF16 stored as uint16_t on the CPU). An output may be the very
// array of one of its inputs (in place: each element is read before it is written), not a
// partially overlapping one.
struct SwiGluForwardArgs {
  int64_t n = 0;
  DType dtype = DType::F32;
  const void* gate = nullptr;  // [n]
  const void* up = nullptr;    // [n]
  void* y = nullptr;           // out [n] = silu(gate) * up
};

// d_gate = dy * up * silu'(gate),  d_up = dy * silu(gate).
struct SwiGluBackwardArgs {
  int64_t n = 0;
  DType dtype = DType::F32;
  const void* dy = nullptr;    // [n]
  const void* gate = nullptr;  // [n], the forward's inputs
  const void* up = nullptr;    // [n]
  void* d_gate = nullptr;      // out [n]
  void* d_up = nullptr;        // out [n]
};

// `stream`: a cudaStream_t for Device::CUDA (nullptr: the default stream), ignored on the CPU.
// Errors: std::invalid_argument for bad sizes, missing pointers, Device::CUDA without CUDA;
// std::runtime_error for a failing CUDA call.
void swiglu_forward(Device device, const SwiGluForwardArgs& args, void* stream = nullptr);
void swiglu_backward(Device device, const SwiGluBackwardArgs& args, void* stream = nullptr);

void swiglu_forward_cpu(const SwiGluForwardArgs& args);
void swiglu_backward_cpu(const SwiGluBackwardArgs& args);
void swiglu_forward_cuda(const SwiGluForwardArgs& args, void* stream);
void swiglu_backward_cuda(const SwiGluBackwardArgs& args, void* stream);
void check_swiglu_args(const SwiGluForwardArgs& args);
void check_swiglu_args(const SwiGluBackwardArgs& args);

}  // namespace ovr::kernels
