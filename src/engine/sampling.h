// Choosing the next token from a row of logits: greedy, or sampling with temperature, top-k and
// top-p (nucleus). Each sequence draws from its own random stream, seeded from (seed, prompt id,
// sample index), so what it samples does not depend on the batch it ran in or on the ranks.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <random>
#include <vector>

namespace ovr::engine {

struct SamplingParams {
  bool greedy = false;
  double temperature = 1.0;  // > 0
  double top_p = 1.0;        // in (0, 1]
  int64_t top_k = 0;         // 0 = no limit
};

struct SampledToken {
  int64_t token;
  // log-probability of the token under the distribution it was drawn from: softmax(logits / T)
  // restricted to the top-k / top-p set and renormalised. For greedy decoding it is the
  // log-probability under softmax(logits) (the point mass itself would always give 0).
  float logprob;
};

// The random stream of one sequence.
class SequenceRng {
 public:
  SequenceRng(uint64_t seed, int64_t prompt_id, int64_t sample_index);
  double uniform();  // in [0, 1)

 private:
  std::mt19937_64 engine_;
};

// Throws ovr::Error for invalid parameters (temperature <= 0, top_p outside (0, 1], top_k < 0).
void validate(const SamplingParams& p);

// The next token of every row of `logits` [rows, vocab] (fp32 or bf16, on any device): softmax of
// logits / T, top-k / top-p truncation and the draw in one pass per row (kernels/sampling.h: CUDA
// on a CUDA tensor, the CPU twin otherwise). Row i draws one uniform from *rngs[i] unless greedy.
// Tokens whose id is in `suppressed` (int64, may be undefined) are never chosen.
std::vector<SampledToken> sample_tokens(const at::Tensor& logits, const SamplingParams& p,
                                        const std::vector<SequenceRng*>& rngs, const at::Tensor& suppressed);

}  // namespace ovr::engine
