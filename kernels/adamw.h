// Fused AdamW over a flat fp32 shard (what ZeroAdamW::step does to this rank's slice), with the
// global-norm clip folded in: one pass reads master, both moments and the gradient once and writes
// them (and optionally the parameter in the compute dtype) once.
//
// A step is two calls: grad_sum_squares (the caller all-reduces it across ranks and turns the norm
// into a clip coefficient, as clip_grad_norm_ does: coef = max_norm / (norm + 1e-6), applied when < 1),
// then adamw_step with grad_scale = that coefficient (1 = no clipping).
//
// Torch-free on purpose (see kernels/README.md). All pointers of a CUDA call are device pointers.
// Errors: std::invalid_argument for bad arguments, std::runtime_error for a failing CUDA call.
#pragma once
#include <cstdint>

#include "kernels/kernel_types.h"

namespace ovr::kernels {

// torch.optim.AdamW's arithmetic, element-wise, in fp32 (g = grad * grad_scale):
//   p *= 1 - lr*wd;  m = m*b1 + (1-b1)*g;  v = v*b2 + (1-b2)*g*g
//   denom = sqrt(v) * (1/sqrt(bias2)) + eps;  p += (-lr/bias1) * (m / denom)
// with bias1 = 1 - b1^step, bias2 = 1 - b2^step and every scalar computed on the host in double,
// then rounded to fp32 (as LibTorch does with a Python/C++ double scalar on an fp32 tensor).
// Where rounding may differ from ZeroAdamW::step's LibTorch ops (all within 1-2 ulp of the result):
//  - CUDA fuses a + alpha*b into one FMA (as nvcc does in LibTorch's own CUDA kernels); the CPU twin
//    rounds the product and the sum separately (LibTorch's CPU kernels use FMA where AVX2 has it).
//  - sqrt(v) / sqrt(bias2) is a multiplication by the fp32 reciprocal, as LibTorch's CUDA division
//    by a scalar does (its CPU kernel divides).
//  - addcdiv: step_size * (m / denom) (LibTorch CUDA's order; its CPU kernel does (step_size * m) / denom).
//  - the clip: LibTorch rounds g * coef to fp32 in grad_shard_; so does this (g is scaled first).
// Weight decay applies to the whole range: call once per stretch of decayed / non-decayed parameters
// (or pass weight_decay = 0 for stretches without decay).
struct AdamWArgs {
  int64_t n = 0;                      // elements
  float* master = nullptr;            // [n] fp32 master weights, updated in place
  float* exp_avg = nullptr;           // [n] first moment, updated in place
  float* exp_avg_sq = nullptr;        // [n] second moment, updated in place
  const float* grad = nullptr;        // [n] gradient (unscaled; read only)
  double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  int64_t step = 1;                   // >= 1: the step being taken (bias corrections)
  double grad_scale = 1;              // clip coefficient in (0, 1], 1 = none
  void* param_out = nullptr;          // optional [n]: the updated master in the compute dtype
  DType param_dtype = DType::F32;     // of param_out: F32 (a copy) or BF16 (round to nearest even)
};

// *out = sum_i grad[i]^2, accumulated in double. CUDA: out is a device pointer, the result is
// deterministic (fixed grid, two passes, no atomics) and nothing is synchronised.
void grad_sum_squares(Device device, const float* grad, int64_t n, double* out, void* stream = nullptr);
void adamw_step(Device device, const AdamWArgs& args, void* stream = nullptr);

// The implementations behind the dispatch, and the shared argument check (std::invalid_argument).
void grad_sum_squares_cpu(const float* grad, int64_t n, double* out);
void adamw_step_cpu(const AdamWArgs& args);
void grad_sum_squares_cuda(const float* grad, int64_t n, double* out, void* stream);
void adamw_step_cuda(const AdamWArgs& args, void* stream);
void check_adamw_args(const AdamWArgs& args);

// The fp32 scalars both implementations use, computed on the host in double as ZeroAdamW::step does.
struct AdamWScalars {
  float decay;        // 1 - lr * wd
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float inv_sqrt_bias2;  // 1 / sqrt(1 - beta2^step)
  float eps;
  float step_size;    // -lr / (1 - beta1^step)
  float grad_scale;
};
AdamWScalars adamw_scalars(const AdamWArgs& args);

}  // namespace ovr::kernels
