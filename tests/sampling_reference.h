// A straightforward reference of kernels/sampling.h's semantics for the tests: double-precision
// softmax, a full sort for the kept set, sums in rank and id order. It also says whether the row is
// safe to compare exactly: float rounding inside the kernels (expf, the fp32 probabilities) moves
// cumulative masses by ~1e-7, so a row whose top_p or draw lands within `margin` of a cumulative
// mass, or whose cut falls between two almost (not exactly) equal logits, may legitimately pick
// another token, and is skipped instead of compared.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <vector>

namespace ovr::test {

struct RefSample {
  int64_t token = -1;
  double logprob = 0;
  bool safe = true;
};

inline RefSample reference_sample(const std::vector<float>& logits, float T, float top_p, int64_t top_k, bool greedy,
                                  double u, double margin = 1e-5) {
  const int64_t V = int64_t(logits.size());
  if (greedy) T = 1;
  std::vector<double> x(V), p(V);
  for (int64_t i = 0; i < V; ++i) x[i] = double(logits[i]) / double(T);
  const double mx = *std::max_element(x.begin(), x.end());
  double S = 0;
  for (int64_t i = 0; i < V; ++i) S += p[i] = std::exp(x[i] - mx);
  for (auto& v : p) v /= S;
  // a and b are ordered the same way by the kernels' fp32 probabilities: equal, or clearly apart
  auto distinct = [&](int64_t a, int64_t b) { return x[a] == x[b] || std::abs(x[a] - x[b]) > 1e-5; };
  RefSample r;
  if (greedy) {
    r.token = std::max_element(x.begin(), x.end()) - x.begin();
    for (int64_t i = 0; i < V; ++i) r.safe = r.safe && distinct(i, r.token);
    r.logprob = std::log(p[r.token]);
    return r;
  }
  const bool truncate = top_p < 1.0f || (top_k > 0 && top_k < V);
  std::vector<char> kept(V, 1);
  double K = 1;
  if (truncate) {
    std::vector<int64_t> order(V);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
    const int64_t k = top_k > 0 ? std::min(top_k, V) : V;
    double M = 0, M_prev = 0;
    int64_t c = V;
    for (int64_t j = 1; j <= V; ++j) {
      M_prev = M;
      M += p[order[j - 1]];
      if (j >= k || M >= top_p) {
        c = j;
        break;
      }
    }
    r.safe = std::abs(M - top_p) > margin && (c == 1 || std::abs(M_prev - top_p) > margin);
    if (c < V) r.safe = r.safe && distinct(order[c - 1], order[c]);
    std::fill(kept.begin(), kept.end(), 0);
    for (int64_t j = 0; j < c; ++j) kept[order[j]] = 1;
    K = M;
  }
  const double target = truncate ? u * K : u;
  double cum = 0;
  for (int64_t i = 0; i < V; ++i) {
    if (!kept[i]) continue;
    cum += p[i];
    if (std::abs(cum - target) <= margin) r.safe = false;
    if (r.token < 0 && cum > target) r.token = i;
  }
  if (r.token < 0) {  // only by rounding: the last kept token with p > 0
    r.safe = false;
    for (int64_t i = 0; i < V; ++i)
      if (kept[i] && p[i] > 0) r.token = i;
  }
  r.logprob = std::log(p[r.token] / (truncate ? K : 1.0));
  return r;
}

// fp32 -> bf16 bits, round to nearest even, and back (finite values only).
inline uint16_t bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
inline float bf16_value(uint16_t b) {
  const uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace ovr::test
