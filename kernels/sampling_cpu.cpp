// Sampling: the CPU twin, one row per OpenMP iteration. The same radix selection as the CUDA kernel
// (three passes of 11, 11 and 10 bits over the probabilities' float bits), written as plain loops.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "sampling.h"

namespace ovr::kernels {

namespace {

inline float load_logit(const void* row, int64_t i, DType dt) {
  if (dt == DType::F32) return static_cast<const float*>(row)[i];
  const uint32_t u = uint32_t(static_cast<const uint16_t*>(row)[i]) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint32_t bits_of(float p) {
  uint32_t b;
  std::memcpy(&b, &p, 4);
  return b;
}

// p in 2^-60 fixed point, rounded to nearest even (as CUDA's __float2ull_rn(p * 2^60f)).
inline uint64_t fixed_of(float p) { return uint64_t(std::nearbyint(double(p) * kMassScale)); }

struct Row {
  int64_t token;
  float logprob;
};

// One pass of the selection: histogram (count, mass) of key(bits) over the tokens whose bits
// satisfy member(bits), then the bucket, scanning from the top, where the kept set ends; the
// buckets above it are added to kept_before / mass_before.
template <class Member, class Key>
uint32_t boundary_bucket(const std::vector<float>& p, Member member, Key key, uint64_t k, uint64_t top_fixed,
                         uint64_t& kept_before, uint64_t& mass_before, uint64_t& bucket_count) {
  constexpr int kBuckets = 2048;
  uint64_t count[kBuckets] = {}, mass[kBuckets] = {};
  for (size_t i = 0; i < p.size(); ++i) {
    const uint32_t b = bits_of(p[i]);
    if (!member(b)) continue;
    ++count[key(b)];
    mass[key(b)] += fixed_of(p[i]);
  }
  int lowest = -1;
  for (int b = kBuckets - 1; b >= 0; --b) {
    if (count[b] == 0) continue;
    if (kept_before + count[b] >= k || mass_before + mass[b] >= top_fixed) {
      bucket_count = count[b];
      return uint32_t(b);
    }
    kept_before += count[b], mass_before += mass[b];
    lowest = b;
  }
  // The sums fell short of top_p by rounding: the lowest bucket is the boundary (everything is kept).
  kept_before -= count[lowest], mass_before -= mass[lowest];
  bucket_count = count[lowest];
  return uint32_t(lowest);
}

Row sample_row(const void* logits, DType dt, int64_t V, float T, float top_p, int64_t top_k, bool greedy, double u,
               std::vector<float>& p) {
  p.resize(size_t(V));
  if (greedy) T = 1.0f;
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < V; ++i) {
    p[i] = load_logit(logits, i, dt) / T;
    mx = std::max(mx, p[i]);
  }
  double S = 0;
#pragma omp simd reduction(+ : S)
  for (int64_t i = 0; i < V; ++i) {
    p[i] = std::exp(p[i] - mx);
    S += p[i];
  }
  const float Sf = float(S);
#pragma omp simd
  for (int64_t i = 0; i < V; ++i) p[i] = p[i] / Sf;

  if (greedy) {
    const int64_t best = std::max_element(p.begin(), p.end()) - p.begin();  // first maximum
    return {best, float(std::log(double(p[best])))};
  }
  const bool truncate = top_p < 1.0f || (top_k > 0 && top_k < V);
  if (!truncate) {
    const uint64_t target = uint64_t(u * kMassScale);
    uint64_t cum = 0;
    int64_t last_positive = 0;
    for (int64_t i = 0; i < V; ++i) {
      if (p[i] > 0) last_positive = i;
      cum += fixed_of(p[i]);
      if (cum > target) return {i, float(std::log(double(p[i])))};
    }
    return {last_positive, float(std::log(double(p[last_positive])))};
  }

  const uint64_t k = uint64_t(top_k > 0 ? std::min(top_k, V) : V);
  const uint64_t top_fixed = uint64_t(std::ceil(double(top_p) * kMassScale));
  uint64_t kept_before = 0, mass_before = 0, n_exact = 0;
  const uint32_t h0 = boundary_bucket(p, [](uint32_t) { return true; }, [](uint32_t b) { return b >> 21; }, k,
                                      top_fixed, kept_before, mass_before, n_exact);
  const uint32_t h1 = boundary_bucket(p, [&](uint32_t b) { return (b >> 21) == h0; },
                                      [](uint32_t b) { return (b >> 10) & 0x7ffu; }, k, top_fixed, kept_before,
                                      mass_before, n_exact);
  const uint32_t hi = (h0 << 11) | h1;
  const uint32_t h2 = boundary_bucket(p, [&](uint32_t b) { return (b >> 10) == hi; },
                                      [](uint32_t b) { return b & 0x3ffu; }, k, top_fixed, kept_before, mass_before,
                                      n_exact);
  const uint32_t exact = (hi << 10) | h2;
  // How many of the tokens with exactly the boundary probability are kept (lowest ids first).
  float pe;
  std::memcpy(&pe, &exact, 4);
  const uint64_t f = fixed_of(pe);
  uint64_t j = std::min(n_exact, k - kept_before);
  if (f > 0) j = std::min(j, (top_fixed - mass_before + f - 1) / f);
  const uint64_t kept_mass = mass_before + j * f;

  const uint64_t target = std::min(uint64_t(u * double(kept_mass)), kept_mass - 1);
  uint64_t cum = 0, exact_seen = 0;
  int64_t pick = -1;
  for (int64_t i = 0; i < V; ++i) {
    const uint32_t b = bits_of(p[i]);
    if (b < exact || (b == exact && exact_seen++ >= j)) continue;
    pick = i;
    cum += fixed_of(p[i]);
    if (cum > target) break;
  }
  return {pick, float(std::log(double(p[pick]) / (double(kept_mass) / kMassScale)))};
}

}  // namespace

void sample_tokens_cpu(const SamplingArgs& a) {
  check_sampling_args(a);
  for (int64_t r = 0; r < a.rows; ++r) {
    const bool greedy = a.greedy && a.greedy[r];
    if (greedy) continue;
    const std::string row = " (row " + std::to_string(r) + ")";
    if (a.temperature && !(a.temperature[r] > 0)) throw std::invalid_argument("sampling: temperature must be > 0" + row);
    if (a.top_p && !(a.top_p[r] > 0 && a.top_p[r] <= 1)) throw std::invalid_argument("sampling: top_p must be in (0, 1]" + row);
    if (a.top_k && a.top_k[r] < 0) throw std::invalid_argument("sampling: top_k must be >= 0" + row);
    if (!(a.uniforms[r] >= 0 && a.uniforms[r] < 1)) throw std::invalid_argument("sampling: uniform must be in [0, 1)" + row);
  }
  const size_t es = a.dtype == DType::BF16 ? 2 : 4;
#pragma omp parallel
  {
    std::vector<float> p;  // the row's probabilities, reused across rows
#pragma omp for schedule(dynamic, 1)
    for (int64_t r = 0; r < a.rows; ++r) {
      const Row out = sample_row(static_cast<const char*>(a.logits) + size_t(r) * size_t(a.V) * es, a.dtype, a.V,
                                 a.temperature ? a.temperature[r] : 1.0f, a.top_p ? a.top_p[r] : 1.0f,
                                 a.top_k ? a.top_k[r] : 0, a.greedy && a.greedy[r], a.uniforms[r], p);
      a.token[r] = out.token;
      a.logprob[r] = out.logprob;
    }
  }
}

}  // namespace ovr::kernels
