#include "rl/sampling.h"

#include <algorithm>
#include <cstring>
#include <functional>
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
// top_p), by radix selection: a probability's float bits order like the probability, so a pass
// buckets the tokens by their high 16 bits (with each bucket's mass and count), a scan from the
// top finds the bucket where the kept set ends, and a second pass does the same with the low 16
// bits inside that bucket. Tokens left in one final bucket have equal probabilities and rank by
// id, the order they are met in. Linear and branch-light: sorting 152k tokens per row per step
// would dominate decoding.
Boundary nucleus_boundary(const float* probs, int64_t vocab, int64_t k, double top_p) {
  constexpr int kBuckets = 1 << 16;
  thread_local std::vector<double> mass(kBuckets, 0.0);
  thread_local std::vector<int64_t> count(kBuckets, 0);
  thread_local std::vector<uint32_t> touched;  // buckets in use, reset after each pass
  auto bits_of = [&](int64_t i) {
    uint32_t bits;
    std::memcpy(&bits, &probs[i], 4);  // probabilities are >= 0: no sign bit, bits order like values
    return bits;
  };
  double mass_before = 0;  // of the tokens known to be kept
  int64_t kept_before = 0;
  // Finds, among tokens passing `member`, the bucket (by `key`) where the kept set ends; adds
  // the buckets above it to mass_before / kept_before.
  auto boundary_bucket = [&](auto member, auto key) {
    touched.clear();
    for (int64_t i = 0; i < vocab; ++i) {
      if (!member(i)) continue;
      const uint32_t b = key(i);
      if (count[b]++ == 0) touched.push_back(b);
      mass[b] += probs[i];
    }
    std::sort(touched.begin(), touched.end(), std::greater<uint32_t>());
    uint32_t boundary = touched.empty() ? 0 : touched.back();  // the lowest bucket if sums fall short
    for (size_t j = 0; j + 1 < touched.size(); ++j) {
      const uint32_t b = touched[j];
      if (kept_before + count[b] >= k || mass_before + mass[b] >= top_p) {
        boundary = b;
        break;
      }
      mass_before += mass[b];
      kept_before += count[b];
    }
    for (uint32_t b : touched) mass[b] = 0, count[b] = 0;
    return boundary;
  };
  const uint32_t high = boundary_bucket([](int64_t) { return true; }, [&](int64_t i) { return bits_of(i) >> 16; });
  const uint32_t low = boundary_bucket([&](int64_t i) { return (bits_of(i) >> 16) == high; },
                                       [&](int64_t i) { return bits_of(i) & 0xffffu; });
  const uint32_t exact = (high << 16) | low;
  int64_t last = -1;
  for (int64_t i = 0; i < vocab; ++i) {  // equal probabilities: lower id first
    if (bits_of(i) != exact) continue;
    last = i;
    mass_before += probs[i];
    if (++kept_before >= k || mass_before >= top_p) break;
  }
  if (last < 0) {  // the sums fell short of top_p by rounding: every token is kept
    last = 0;
    for (int64_t i = 1; i < vocab; ++i)
      if (probs[i] <= probs[last]) last = i;  // the lowest-ranked token: least probable, highest id
  }
  return {last, mass_before};
}

}  // namespace

double effective_temperature(const SamplingParams& p) { return p.greedy ? 1.0 : p.temperature; }

SampledToken sample_token(const float* probs, int64_t vocab, const SamplingParams& p, SequenceRng& rng) {
  auto log_of = [](double x) { return float(std::log(x)); };
  if (p.greedy) {
    const int64_t best = int64_t(std::max_element(probs, probs + vocab) - probs);  // first maximum
    return {best, log_of(probs[best])};
  }
  const double u = rng.uniform();
  const bool truncate = p.top_p < 1.0 || (p.top_k > 0 && p.top_k < vocab);
  if (!truncate) {  // inverse CDF in index order: one pass, no sort
    double cum = 0;
    int64_t last_positive = 0;
    for (int64_t i = 0; i < vocab; ++i) {
      if (probs[i] > 0) last_positive = i;
      cum += probs[i];
      if (u < cum) return {i, log_of(probs[i])};
    }
    return {last_positive, log_of(probs[last_positive])};  // rounding left u past the total
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
  return {pick, log_of(double(probs[pick]) / b.mass)};
}

}  // namespace ovr::rl
