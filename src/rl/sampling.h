// Choosing the next token from a row of logits: greedy, or sampling with temperature, top-k and
// top-p (nucleus). Each sequence draws from its own random stream, seeded from (seed, prompt id,
// sample index), so what it samples does not depend on the batch it ran in or on the ranks.
#pragma once
#include <cstdint>
#include <random>

namespace ovr::rl {

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
// The temperature the caller applies before the softmax: p.temperature, or 1 for greedy.
double effective_temperature(const SamplingParams& p);

// One row: probs = softmax(logits / T), computed by the caller for the whole batch at once
// (vectorised); this picks the token with one draw from `rng` (none for greedy).
SampledToken sample_token(const float* probs, int64_t vocab, const SamplingParams& p, SequenceRng& rng);

}  // namespace ovr::rl
