#include "rl/sampling.h"

#include <algorithm>
#include <utility>
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

namespace {

// Token a ranks at or above token b: higher probability, or equal probability and lower id.
inline bool ranks_at_or_above(const float* probs, int64_t a, int64_t b) {
  return probs[a] > probs[b] || (probs[a] == probs[b] && a <= b);
}

struct Boundary {
  int64_t token;  // the lowest-ranked kept token
  double mass;    // total probability of the kept tokens
};

// The lowest-ranked token of the kept set (at most k tokens, the fewest whose mass reaches
// top_p), by quickselect over token ids with a deterministic pivot (same result on every
// platform and standard library).
Boundary nucleus_boundary(const float* probs, int64_t vocab, int64_t k, double top_p) {
  std::vector<int64_t> ids(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) ids[size_t(i)] = i;
  auto above = [&](int64_t a, int64_t b) { return probs[a] > probs[b] || (probs[a] == probs[b] && a < b); };
  int64_t lo = 0, hi = vocab;  // ids[0, lo) are kept for sure; the boundary lies in [lo, hi)
  double mass_before = 0;      // mass of ids[0, lo)
  while (true) {
    // Mass sums in different orders may disagree in the last bit at the boundary: then the
    // range can close before the boundary is met, and the last kept token is the boundary.
    if (lo >= hi) return {ids[size_t(lo - 1)], mass_before};
    // Median of three (first, middle, last) as the pivot, moved to the end of the range.
    int64_t a = lo, m = lo + (hi - lo) / 2, c = hi - 1;
    if (above(ids[size_t(m)], ids[size_t(a)])) std::swap(a, m);
    if (above(ids[size_t(c)], ids[size_t(m)])) std::swap(m, c);
    if (above(ids[size_t(m)], ids[size_t(a)])) std::swap(a, m);
    std::swap(ids[size_t(m)], ids[size_t(hi - 1)]);
    const int64_t pivot = ids[size_t(hi - 1)];
    int64_t store = lo;
    double mass_above = 0;
    for (int64_t i = lo; i < hi - 1; ++i)
      if (above(ids[size_t(i)], pivot)) {
        mass_above += probs[ids[size_t(i)]];
        std::swap(ids[size_t(i)], ids[size_t(store++)]);
      }
    std::swap(ids[size_t(store)], ids[size_t(hi - 1)]);  // the pivot at its rank
    const int64_t rank = store;                           // number of tokens above the pivot
    if (rank >= k || mass_before + mass_above >= top_p) {
      hi = rank;  // the boundary is above the pivot
      continue;
    }
    const double with_pivot = mass_before + mass_above + probs[pivot];
    if (rank + 1 == k || with_pivot >= top_p) return {pivot, with_pivot};
    if (rank + 1 == vocab) return {pivot, with_pivot};  // everything kept (rounding below top_p)
    mass_before = with_pivot;
    lo = rank + 1;
  }
}

}  // namespace

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
  // the shortest prefix whose mass reaches top_p. It is found by selection, not sorting (O(vocab)
  // expected: with a flat distribution, sorting 152k tokens per row per step would dominate).
  const Boundary b = nucleus_boundary(probs, vocab, p.top_k > 0 ? std::min(p.top_k, vocab) : vocab, p.top_p);
  // Draw in token-id order over the kept tokens, renormalised.
  const double target = u * b.mass;
  double cum = 0;
  int64_t pick = -1;
  for (int64_t i = 0; i < vocab; ++i) {
    if (!ranks_at_or_above(probs, i, b.token)) continue;
    pick = i;
    cum += probs[i];
    if (target < cum) break;
  }
  return {pick, float(double(logprobs[pick]) - std::log(b.mass))};
}

}  // namespace ovr::rl
