// The fused linear log-prob (kernels/fused_logprob.h) as a differentiable LibTorch op: log p(target)
// and the entropy of softmax(hidden · weightᵀ) without ever forming the [T, vocab] logits. The SFT
// loss, PPO's policy log-probs and entropy bonus, and the scoring of rollouts under the old and the
// reference policy all go through it.
//
// Memory: the plain way (matmul, log_softmax, gather) holds several [T, vocab] fp32 tensors for
// autograd: 3.2 × T × 151936 × 4 B, ~15 GiB at T = 8k. This op holds one tile (32 MiB) and O(T)
// floats; its backward recomputes the logits tile by tile (one more GEMM than the plain way).
#pragma once
#include <ATen/core/Tensor.h>

namespace ovr::ops {

struct TokenLogprobs {
  at::Tensor logprob;  // [T] fp32: log softmax(hidden · weightᵀ)[target]
  at::Tensor entropy;  // [T] fp32: -sum p log p; undefined unless asked for
};

// hidden [T, H] and weight [V, H] (lm_head's weight, or the tied embedding): any floating dtype;
// targets [T] int64 in [0, V). Differentiable w.r.t. hidden and weight (gradients in their dtypes).
// On the CPU the kernel computes in fp32 (a bf16 weight is copied to fp32 for the call); on CUDA,
// bf16 inputs go straight to the kernel with fp32 accumulation. A target outside [0, V) throws
// ovr::Error on the CPU; on CUDA it is not checked (that would synchronise) and yields NaN.
TokenLogprobs fused_logprob(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                            bool with_entropy = false);

// sum_t -log p(target_t): the SFT loss, differentiable w.r.t. hidden and weight like
// fused_logprob(...).logprob.sum() negated, but cheaper to train with. Its gradient with respect to
// each log-prob is known before the forward (-1), so when a gradient is wanted the forward computes
// the gradients as well, in one pass over the whole vocabulary per chunk of 512 tokens
// (kernels::fused_logprob_forward_backward: 3 GEMMs, no recompute; workspace 512 × V floats,
// 297 MiB at V = 151936) and keeps them until the backward, which only scales them.
at::Tensor fused_nll_sum(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets);

}  // namespace ovr::ops
