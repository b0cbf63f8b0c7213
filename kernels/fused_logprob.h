// Fused linear log-prob / entropy: log p(target) and the entropy of softmax(hidden · weightᵀ),
// forward and backward, without ever holding the [T, V] logits.
//
// The logits are computed one tile of [chunks.tokens × chunks.vocab] at a time (a GEMM into a
// small workspace) and folded into per-token running statistics with an online log-sum-exp; the
// backward recomputes each tile, turns it into d_logits in place and feeds two GEMMs. Extra memory
// is one tile plus O(T) floats, instead of several [T, V] tensors.
//
// Torch-free on purpose: raw pointers and a stream, so that the .cu compiles in seconds (see
// kernels/README.md). Layouts are row-major and contiguous; all pointers of a CUDA call are device
// pointers. Errors: std::invalid_argument for bad arguments (sizes, missing pointers, a target
// outside [0, V) on the CPU), std::runtime_error for a failing library call (CUDA, cuBLAS).
#pragma once
#include <cstdint>

#include "kernels/kernel_types.h"

namespace ovr::kernels {

// DType: of hidden and weight. Accumulation and every output are fp32 whatever the input.
// BF16 is CUDA-only here (the CPU twin throws std::invalid_argument for it).

// Tile shape. Workspace = tokens * vocab floats (the defaults: 32 MiB), on the call's device.
struct LogprobChunks {
  int64_t tokens = 1024;
  int64_t vocab = 8192;
};

struct LogprobForwardArgs {
  int64_t T = 0, V = 0, H = 0;  // tokens, vocabulary, hidden size
  DType dtype = DType::F32;
  const void* hidden = nullptr;      // [T, H]
  const void* weight = nullptr;      // [V, H] (the lm_head / tied embedding)
  const int64_t* targets = nullptr;  // [T], each in [0, V)
  float* logprob = nullptr;          // out [T]: log softmax(logits)[target]
  float* lse = nullptr;              // out [T]: logsumexp(logits); the backward needs it
  float* entropy = nullptr;          // out [T], optional: -sum p log p (nullptr: not computed)
  LogprobChunks chunks;
};

// d logprob / d z_k = onehot_k - p_k;  d entropy / d z_k = -p_k (z_k - sum_j p_j z_j),
// where z are the logits and p = softmax(z). The sum sum_j p_j z_j is recovered as lse - entropy.
struct LogprobBackwardArgs {
  int64_t T = 0, V = 0, H = 0;
  DType dtype = DType::F32;
  const void* hidden = nullptr;        // [T, H], as in the forward
  const void* weight = nullptr;        // [V, H], as in the forward
  const int64_t* targets = nullptr;    // [T], as in the forward
  const float* lse = nullptr;          // [T] from the forward
  const float* entropy = nullptr;      // [T] from the forward; required when grad_entropy is given
  const float* grad_logprob = nullptr; // [T], optional (nullptr: zero)
  const float* grad_entropy = nullptr; // [T], optional (nullptr: zero)
  float* grad_hidden = nullptr;        // out [T, H] fp32, optional (nullptr: not computed)
  float* grad_weight = nullptr;        // out [V, H] fp32, optional (nullptr: not computed)
  bool accumulate = false;             // false: overwrite the gradients; true: add to them
  LogprobChunks chunks;
};

// Forward and backward in one call, for when the upstream gradients are known before the forward:
// the SFT loss (grad_logprob = -1 per token; an autograd adapter scales the result by the incoming
// gradient afterwards). With chunks.vocab >= V each token chunk's logits over the whole vocabulary
// are one tile, computed once: 3 GEMMs instead of the 4 of forward + backward, for a workspace of
// chunks.tokens * V floats (512 tokens: 297 MiB at V = 151936, whatever T). chunks.tokens is also the
// inner size of the grad_weight GEMM: on the CPU, 512 ran as fast as the plain LibTorch way, 256
// about 20% slower. With a smaller chunks.vocab it recomputes, as forward + backward do. The forward
// outputs (logprob, lse, entropy) are written too.
struct LogprobGrads {
  const float* grad_logprob = nullptr;  // [T], optional (nullptr: zero)
  const float* grad_entropy = nullptr;  // [T], optional; needs the forward's entropy output
  float* grad_hidden = nullptr;         // out [T, H] fp32, optional
  float* grad_weight = nullptr;         // out [V, H] fp32, optional
  bool accumulate = false;              // false: overwrite; true: add
};

// The backward's arguments for the forward `f` and the gradients `g`.
inline LogprobBackwardArgs backward_args(const LogprobForwardArgs& f, const LogprobGrads& g) {
  LogprobBackwardArgs b;
  b.T = f.T, b.V = f.V, b.H = f.H, b.dtype = f.dtype, b.chunks = f.chunks;
  b.hidden = f.hidden, b.weight = f.weight, b.targets = f.targets, b.lse = f.lse, b.entropy = f.entropy;
  b.grad_logprob = g.grad_logprob, b.grad_entropy = g.grad_entropy;
  b.grad_hidden = g.grad_hidden, b.grad_weight = g.grad_weight, b.accumulate = g.accumulate;
  return b;
}

// The dispatch: one function per direction. `stream` is a cudaStream_t for Device::CUDA (nullptr:
// the default stream) and ignored on the CPU. CUDA calls are asynchronous with respect to the host.
// Device::CUDA in a build without CUDA throws std::invalid_argument.
void fused_logprob_forward(Device device, const LogprobForwardArgs& args, void* stream = nullptr);
void fused_logprob_backward(Device device, const LogprobBackwardArgs& args, void* stream = nullptr);
void fused_logprob_forward_backward(Device device, const LogprobForwardArgs& fwd, const LogprobGrads& grads,
                                    void* stream = nullptr);

// Whether this build has the CUDA implementation (same as have_cuda()).
bool fused_logprob_has_cuda();

// The implementations behind the dispatch.
void fused_logprob_forward_cpu(const LogprobForwardArgs& args);
void fused_logprob_backward_cpu(const LogprobBackwardArgs& args);
void fused_logprob_forward_backward_cpu(const LogprobForwardArgs& fwd, const LogprobGrads& grads);
void fused_logprob_forward_cuda(const LogprobForwardArgs& args, void* stream);
void fused_logprob_backward_cuda(const LogprobBackwardArgs& args, void* stream);
void fused_logprob_forward_backward_cuda(const LogprobForwardArgs& fwd, const LogprobGrads& grads, void* stream);

// Shared argument checks (sizes, pointers, chunk sizes); throw std::invalid_argument.
void check_forward_args(const LogprobForwardArgs& args);
void check_backward_args(const LogprobBackwardArgs& args);

}  // namespace ovr::kernels
