// RMSNorm and the SwiGLU activation through kernels/ (one fused pass forward and one backward,
// fp32 math, CUDA on CUDA tensors and the CPU twin otherwise), as differentiable LibTorch ops.
// Inputs the kernels do not take (dtypes other than fp32 / bf16, a weight whose dtype differs from
// x's) go the plain LibTorch way, which computes the same thing.
#pragma once
#include <ATen/core/Tensor.h>

#include <utility>
#include <vector>

namespace ovr::model {

// weight * (x * rsqrt(mean(x², last dim) + eps)), computed in fp32 (Hugging Face's Qwen2RMSNorm).
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

// silu(gate) * up, element-wise (gate and up of one shape and dtype).
at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up);

// Rotary embeddings of q [B, S, Hq, hd] and k [B, S, Hk, hd] (M-RoPE when mrope_section has three
// sections: positions [3, B, S]; else plain RoPE from positions[0] of [A, B, S] or from [B, S]), as
// model/rotary.h defines them, in one kernel launch for both; the angles are computed in the kernel.
// Returns the rotated q and k, contiguous, in the same layout.
std::pair<at::Tensor, at::Tensor> apply_rope(const at::Tensor& q, const at::Tensor& k, const at::Tensor& positions,
                                             double theta, const std::vector<int64_t>& mrope_section);

}  // namespace ovr::model
