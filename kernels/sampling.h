// Sampling the next token from rows of logits in one call: temperature, top-k, top-p (nucleus),
// greedy, with the semantics of rl::sample_token (src/engine/sampling.cpp) applied to
// probs = softmax(logits / T), and the uniform draws supplied by the caller so that the CPU twin
// and CUDA pick the same token from the same numbers.
//
// Per row, exactly (both implementations):
//   x_i = logit_i / T (fp32 division; T = 1 for greedy rows), m = max x,
//   e_i = exp(x_i - m) (fp32), S = sum e_i (double), p_i = e_i / float(S) (fp32 division).
//   greedy: the first argmax of p; logprob = log(p_best) (= log softmax(logits)[best] up to rounding).
//   no truncation (top_p >= 1 and top_k = 0 or >= V): inverse CDF in id order, the first i with
//     u < p_0 + ... + p_i (the last i with p_i > 0 if rounding leaves u past the total);
//     logprob = log(p_i).
//   otherwise: the kept set is the tokens by decreasing p (ties: lower id first) cut at top_k and at
//     the shortest prefix whose mass reaches top_p; with K its mass, the token is the first kept i
//     in id order whose kept cumulative mass exceeds u * K; logprob = log(p_i / K).
// Masses are sums of p_i in 2^-60 fixed point (uint64), not floating point: integer sums do not
// depend on the order of summation, so the kept set and the draw are the same whatever order a
// thread block adds in, and CUDA needs no float atomics. This differs from sample_token's double
// sums only when top_p or u * K lands within ~1e-13 of a cumulative mass. CPU and CUDA differ
// only through p_i: their expf may differ by an ulp and S is summed in another order, which moves
// the result only when u or top_p lands within rounding (~1e-6) of a cumulative mass.
//
// Torch-free (see kernels/README.md). Layouts row-major and contiguous; all pointers of a CUDA call
// are device pointers. Errors: std::invalid_argument for bad arguments (on the CPU also per-row
// parameters: T <= 0, top_p outside (0, 1], top_k < 0; the CUDA path cannot read them without a
// synchronisation and does not check them), std::runtime_error for a failing CUDA call.
#pragma once
#include <cstdint>

#include "kernels/kernel_types.h"

namespace ovr::kernels {

struct SamplingArgs {
  int64_t rows = 0, V = 0;
  DType dtype = DType::F32;           // of logits; F32 or BF16, on both devices
  const void* logits = nullptr;       // [rows, V]
  // Per row; nullptr = the default for every row (T = 1, top_p = 1, top_k = 0, not greedy).
  const float* temperature = nullptr; // [rows], > 0 (ignored for greedy rows)
  const float* top_p = nullptr;       // [rows], in (0, 1]
  const int64_t* top_k = nullptr;     // [rows], >= 0; 0 = no limit
  const uint8_t* greedy = nullptr;    // [rows], nonzero = greedy
  const double* uniforms = nullptr;   // [rows], in [0, 1) (engine::SequenceRng::uniform); unused by greedy rows
  int64_t* token = nullptr;           // out [rows]
  float* logprob = nullptr;           // out [rows]
};

// `stream` is a cudaStream_t for Device::CUDA (nullptr: the default stream), ignored on the CPU.
void sample_tokens(Device device, const SamplingArgs& args, void* stream = nullptr);

void sample_tokens_cpu(const SamplingArgs& args);
void sample_tokens_cuda(const SamplingArgs& args, void* stream);
void check_sampling_args(const SamplingArgs& args);

// The fixed-point scale of masses: a probability p counts as round(p * 2^60).
constexpr double kMassScale = 1152921504606846976.0;  // 2^60

}  // namespace ovr::kernels
