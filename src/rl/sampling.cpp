#include "rl/sampling.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/error.h"

namespace ovr::rl {

SequenceRng::SequenceRng(uint64_t seed, int64_t prompt_id, int64_t sample_index) {
  std::seed_seq seq{uint32_t(seed), uint32_t(seed >> 32), uint32_t(uint64_t(prompt_id)),
                    uint32_t(uint64_t(prompt_id) >> 32), uint32_t(uint64_t(sample_index))};
  engine_.seed(seq);
}

double SequenceRng::uniform() {
  return double(engine_() >> 11) * 0x1.0p-53;  // 53 random bits: the same double on every platform
}

void validate(const SamplingParams& p) {
  if (p.greedy) return;
  if (!(p.temperature > 0)) throw Error("sampling: temperature must be > 0 (use greedy decoding for 0)");
  if (!(p.top_p > 0 && p.top_p <= 1)) throw Error("sampling: top_p must be in (0, 1]");
  if (p.top_k < 0) throw Error("sampling: top_k must be >= 0");
}

double effective_temperature(const SamplingParams& p) { return p.greedy ? 1.0 : p.temperature; }

SampledToken sample_token(const float* logprobs, const float* probs, int64_t vocab, const SamplingParams& p,
                          SequenceRng& rng) {
  if (p.greedy) {
    const int64_t best = int64_t(std::max_element(logprobs, logprobs + vocab) - logprobs);  // first maximum
    return {best, logprobs[best]};
  }
  const double u = rng.uniform();
  const bool truncate = p.top_p < 1.0 || (p.top_k > 0 && p.top_k < vocab);
  if (!truncate) {  // inverse CDF in index order: one pass, no sort
    double cum = 0;
    int64_t last_positive = 0;
    for (int64_t i = 0; i < vocab; ++i) {
      if (probs[i] > 0) last_positive = i;
      cum += probs[i];
      if (u < cum) return {i, logprobs[i]};
    }
    return {last_positive, logprobs[last_positive]};  // rounding left u past the total
  }
  // The kept set: tokens by decreasing probability (ties: lower id first), cut at top_k and at
  // the first prefix whose mass reaches top_p. The mass is usually in a few tokens, so a partial
  // sort of a growing head avoids sorting the whole vocabulary.
  std::vector<int64_t> order(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) order[size_t(i)] = i;
  auto by_prob = [&](int64_t a, int64_t b) { return probs[a] > probs[b] || (probs[a] == probs[b] && a < b); };
  const int64_t k_limit = p.top_k > 0 ? std::min(p.top_k, vocab) : vocab;
  int64_t kept = 0;
  double mass = 0;
  for (int64_t head = std::min<int64_t>(64, k_limit);; head = std::min(head * 16, k_limit)) {
    std::partial_sort(order.begin(), order.begin() + head, order.end(), by_prob);
    mass = 0;
    kept = 0;
    while (kept < head) {
      mass += probs[order[size_t(kept)]];
      ++kept;
      if (mass >= p.top_p) break;
    }
    if (mass >= p.top_p || head == k_limit) break;
  }
  // Draw from the kept tokens, renormalised.
  double cum = 0;
  int64_t pick = order[size_t(kept - 1)];
  for (int64_t i = 0; i < kept; ++i) {
    cum += probs[order[size_t(i)]] / mass;
    if (u < cum) {
      pick = order[size_t(i)];
      break;
    }
  }
  return {pick, float(double(logprobs[pick]) - std::log(mass))};
}

}  // namespace ovr::rl
