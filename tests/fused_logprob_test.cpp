// The fused linear log-prob / entropy kernel (CPU twin) against a double-precision reference that
// materialises the logits: forward, backward, the entropy gradient by finite differences, errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

#include "kernels/fused_logprob.h"

using namespace ovr::kernels;

namespace {

struct Case {
  int64_t T, V, H;
  std::vector<float> x, w;  // [T, H], [V, H]
  std::vector<int64_t> y;   // [T]
  std::vector<float> g, ge; // upstream gradients of logprob and entropy [T]
};

Case random_case(int64_t T, int64_t V, int64_t H, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::uniform_int_distribution<int64_t> tok(0, V - 1);
  Case c{T, V, H, {}, {}, {}, {}, {}};
  // Logits of order `scale`: hidden ~ N(0, 1), weight ~ N(0, scale^2 / H).
  const float ws = scale / std::sqrt(static_cast<float>(H));
  for (int64_t i = 0; i < T * H; ++i) c.x.push_back(n(rng));
  for (int64_t i = 0; i < V * H; ++i) c.w.push_back(n(rng) * ws);
  for (int64_t t = 0; t < T; ++t) c.y.push_back(tok(rng));
  for (int64_t t = 0; t < T; ++t) c.g.push_back(n(rng));
  for (int64_t t = 0; t < T; ++t) c.ge.push_back(n(rng));
  return c;
}

struct Reference {
  std::vector<double> logprob, entropy, lse, grad_hidden, grad_weight;
};

// Straightforward double precision: logits [T, V], softmax, and the analytic gradients.
Reference reference(const Case& c, const std::vector<double>* x_override = nullptr) {
  const int64_t T = c.T, V = c.V, H = c.H;
  Reference r;
  r.logprob.resize(T);
  r.entropy.resize(T);
  r.lse.resize(T);
  r.grad_hidden.assign(T * H, 0.0);
  r.grad_weight.assign(V * H, 0.0);
  std::vector<double> z(V), p(V);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t v = 0; v < V; ++v) {
      double acc = 0;
      for (int64_t h = 0; h < H; ++h)
        acc += (x_override ? (*x_override)[t * H + h] : static_cast<double>(c.x[t * H + h])) * c.w[v * H + h];
      z[v] = acc;
    }
    const double mx = *std::max_element(z.begin(), z.end());
    double s = 0;
    for (int64_t v = 0; v < V; ++v) s += std::exp(z[v] - mx);
    const double lse = mx + std::log(s);
    double mean_z = 0, ent = 0;
    for (int64_t v = 0; v < V; ++v) {
      p[v] = std::exp(z[v] - lse);
      mean_z += p[v] * z[v];
      ent -= p[v] * (z[v] - lse);
    }
    r.lse[t] = lse;
    r.logprob[t] = z[c.y[t]] - lse;
    r.entropy[t] = ent;
    for (int64_t v = 0; v < V; ++v) {
      const double d = c.g[t] * ((v == c.y[t] ? 1.0 : 0.0) - p[v]) - c.ge[t] * p[v] * (z[v] - mean_z);
      for (int64_t h = 0; h < H; ++h) {
        r.grad_hidden[t * H + h] += d * c.w[v * H + h];
        r.grad_weight[v * H + h] += d * c.x[t * H + h];
      }
    }
  }
  return r;
}

// max |a - b| / max(max |b|, 1): relative to the size of the reference, absolute near zero.
double rel_error(const std::vector<float>& a, const std::vector<double>& b) {
  double err = 0, ref = 1;
  for (size_t i = 0; i < b.size(); ++i) {
    err = std::max(err, std::abs(a[i] - b[i]));
    ref = std::max(ref, std::abs(b[i]));
  }
  return err / ref;
}

struct Outputs {
  std::vector<float> logprob, lse, entropy, grad_hidden, grad_weight;
};

Outputs run_cpu(const Case& c, LogprobChunks chunks, bool entropy = true, bool one_call = false) {
  Outputs o;
  o.logprob.assign(c.T, 0);
  o.lse.assign(c.T, 0);
  o.entropy.assign(c.T, 0);
  o.grad_hidden.assign(c.T * c.H, 0);
  o.grad_weight.assign(c.V * c.H, 0);
  LogprobForwardArgs f;
  f.T = c.T, f.V = c.V, f.H = c.H;
  f.hidden = c.x.data(), f.weight = c.w.data(), f.targets = c.y.data();
  f.logprob = o.logprob.data(), f.lse = o.lse.data(), f.entropy = entropy ? o.entropy.data() : nullptr;
  f.chunks = chunks;
  if (one_call) {
    LogprobGrads g;
    g.grad_logprob = c.g.data(), g.grad_entropy = entropy ? c.ge.data() : nullptr;
    g.grad_hidden = o.grad_hidden.data(), g.grad_weight = o.grad_weight.data();
    fused_logprob_forward_backward(Device::CPU, f, g);
    return o;
  }
  fused_logprob_forward(Device::CPU, f);
  LogprobBackwardArgs b;
  b.T = c.T, b.V = c.V, b.H = c.H;
  b.hidden = c.x.data(), b.weight = c.w.data(), b.targets = c.y.data();
  b.lse = o.lse.data(), b.entropy = entropy ? o.entropy.data() : nullptr;
  b.grad_logprob = c.g.data(), b.grad_entropy = entropy ? c.ge.data() : nullptr;
  b.grad_hidden = o.grad_hidden.data(), b.grad_weight = o.grad_weight.data();
  b.chunks = chunks;
  fused_logprob_backward(Device::CPU, b);
  return o;
}

}  // namespace

TEST(FusedLogprob, forward_and_backward_match_double_reference_for_any_chunking) {
  struct Shape {
    int64_t T, V, H, cT, cV;
  };
  const Shape shapes[] = {
      {1, 1, 1, 1, 1},      {7, 13, 5, 1, 1},     {7, 13, 5, 3, 4},     {17, 101, 33, 4, 10},
      {17, 101, 33, 16, 100}, {17, 101, 33, 17, 101}, {17, 101, 33, 1000, 1000}, {33, 257, 64, 8, 64},
      {64, 1000, 48, 1024, 8192}, {50, 999, 31, 7, 333},
  };
  unsigned seed = 1;
  for (const Shape& s : shapes) {
    for (float scale : {1.0f, 8.0f}) {
      SCOPED_TRACE(testing::Message() << "T=" << s.T << " V=" << s.V << " H=" << s.H << " chunks=" << s.cT << "x"
                                      << s.cV << " scale=" << scale);
      const Case c = random_case(s.T, s.V, s.H, seed++, scale);
      const Reference r = reference(c);
      const Outputs o = run_cpu(c, {s.cT, s.cV});
      EXPECT_LE(rel_error(o.logprob, r.logprob), 1e-5);
      EXPECT_LE(rel_error(o.lse, r.lse), 1e-5);
      EXPECT_LE(rel_error(o.entropy, r.entropy), 1e-5);
      EXPECT_LE(rel_error(o.grad_hidden, r.grad_hidden), 1e-5);
      EXPECT_LE(rel_error(o.grad_weight, r.grad_weight), 1e-5);
    }
  }
}

TEST(FusedLogprob, forward_backward_in_one_call_matches_reference_with_and_without_recompute) {
  const Case c = random_case(23, 301, 29, 11, 4.0f);
  const Reference r = reference(c);
  for (LogprobChunks chunks : {LogprobChunks{5, 301}, LogprobChunks{23, 4096}, LogprobChunks{5, 64}}) {
    SCOPED_TRACE(testing::Message() << "chunks=" << chunks.tokens << "x" << chunks.vocab);
    const Outputs o = run_cpu(c, chunks, /*entropy=*/true, /*one_call=*/true);
    EXPECT_LE(rel_error(o.logprob, r.logprob), 1e-5);
    EXPECT_LE(rel_error(o.entropy, r.entropy), 1e-5);
    EXPECT_LE(rel_error(o.grad_hidden, r.grad_hidden), 1e-5);
    EXPECT_LE(rel_error(o.grad_weight, r.grad_weight), 1e-5);
  }
}

TEST(FusedLogprob, logprob_only_gradient_matches_reference_without_entropy) {
  Case c = random_case(19, 211, 40, 77, 4.0f);
  const Outputs o = run_cpu(c, {5, 50}, /*entropy=*/false);
  std::fill(c.ge.begin(), c.ge.end(), 0.0f);
  const Reference r = reference(c);
  EXPECT_LE(rel_error(o.logprob, r.logprob), 1e-5);
  EXPECT_LE(rel_error(o.grad_hidden, r.grad_hidden), 1e-5);
  EXPECT_LE(rel_error(o.grad_weight, r.grad_weight), 1e-5);
}

TEST(FusedLogprob, entropy_gradient_matches_finite_differences) {
  // Only the entropy term: grad_logprob = 0, grad_entropy = 1 for one token at a time is the same
  // as sum_t entropy_t with weights ge_t; differentiate L(x) = sum_t ge_t entropy_t(x) numerically.
  Case c = random_case(5, 37, 11, 9, 3.0f);
  std::fill(c.g.begin(), c.g.end(), 0.0f);
  const Outputs o = run_cpu(c, {2, 8});
  const Reference r = reference(c);
  std::vector<double> x(c.x.begin(), c.x.end());
  auto loss = [&](const std::vector<double>& xx) {
    const Reference rr = reference(c, &xx);
    double l = 0;
    for (int64_t t = 0; t < c.T; ++t) l += c.ge[t] * rr.entropy[t];
    return l;
  };
  const double eps = 1e-6;
  std::vector<double> fd(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    std::vector<double> xp = x, xm = x;
    xp[i] += eps;
    xm[i] -= eps;
    fd[i] = (loss(xp) - loss(xm)) / (2 * eps);
  }
  // The analytic formula (double) against central differences, then the kernel against both.
  double analytic_err = 0, scale = 1;
  for (size_t i = 0; i < fd.size(); ++i) {
    analytic_err = std::max(analytic_err, std::abs(r.grad_hidden[i] - fd[i]));
    scale = std::max(scale, std::abs(fd[i]));
  }
  EXPECT_LE(analytic_err / scale, 1e-7);
  EXPECT_LE(rel_error(o.grad_hidden, fd), 1e-5);
}

TEST(FusedLogprob, accumulate_adds_to_existing_gradients) {
  const Case c = random_case(9, 40, 12, 3);
  const Outputs o = run_cpu(c, {4, 16});
  std::vector<float> gh(c.T * c.H, 1.0f), gw(c.V * c.H, 2.0f);
  LogprobBackwardArgs b;
  b.T = c.T, b.V = c.V, b.H = c.H;
  b.hidden = c.x.data(), b.weight = c.w.data(), b.targets = c.y.data();
  b.lse = o.lse.data(), b.entropy = o.entropy.data();
  b.grad_logprob = c.g.data(), b.grad_entropy = c.ge.data();
  b.grad_hidden = gh.data(), b.grad_weight = gw.data();
  b.accumulate = true;
  b.chunks = {4, 16};
  fused_logprob_backward(Device::CPU, b);
  for (size_t i = 0; i < gh.size(); ++i) ASSERT_NEAR(gh[i], o.grad_hidden[i] + 1.0f, 1e-5);
  for (size_t i = 0; i < gw.size(); ++i) ASSERT_NEAR(gw[i], o.grad_weight[i] + 2.0f, 1e-5);
}

TEST(FusedLogprob, target_outside_vocabulary_is_invalid_argument) {
  for (int64_t bad : {int64_t{-100}, int64_t{-1}, int64_t{40}}) {
    Case c = random_case(6, 40, 8, 4);
    c.y[3] = bad;
    std::vector<float> lp(c.T), lse(c.T), gh(c.T * c.H), gw(c.V * c.H);
    LogprobForwardArgs f;
    f.T = c.T, f.V = c.V, f.H = c.H;
    f.hidden = c.x.data(), f.weight = c.w.data(), f.targets = c.y.data();
    f.logprob = lp.data(), f.lse = lse.data();
    try {
      fused_logprob_forward(Device::CPU, f);
      FAIL() << "no exception for target " << bad;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("outside the vocabulary"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("token 3"), std::string::npos) << e.what();
    }
    LogprobBackwardArgs b;
    b.T = c.T, b.V = c.V, b.H = c.H;
    b.hidden = c.x.data(), b.weight = c.w.data(), b.targets = c.y.data();
    b.lse = lse.data(), b.grad_logprob = c.g.data(), b.grad_hidden = gh.data(), b.grad_weight = gw.data();
    EXPECT_THROW(fused_logprob_backward(Device::CPU, b), std::invalid_argument);
  }
}

TEST(FusedLogprob, bad_sizes_and_missing_pointers_are_invalid_argument) {
  const Case c = random_case(4, 10, 3, 5);
  std::vector<float> lp(c.T), lse(c.T);
  LogprobForwardArgs f;
  f.T = c.T, f.V = c.V, f.H = c.H;
  f.hidden = c.x.data(), f.weight = c.w.data(), f.targets = c.y.data();
  f.logprob = lp.data(), f.lse = lse.data();
  LogprobForwardArgs bad = f;
  bad.chunks.vocab = 0;
  EXPECT_THROW(fused_logprob_forward(Device::CPU, bad), std::invalid_argument);
  bad = f;
  bad.lse = nullptr;
  EXPECT_THROW(fused_logprob_forward(Device::CPU, bad), std::invalid_argument);
  bad = f;
  bad.dtype = DType::BF16;
  EXPECT_THROW(fused_logprob_forward(Device::CPU, bad), std::invalid_argument);
  bad = f;
  bad.T = 0;  // nothing to do
  EXPECT_NO_THROW(fused_logprob_forward(Device::CPU, bad));
  LogprobBackwardArgs b;
  b.T = c.T, b.V = c.V, b.H = c.H;
  b.hidden = c.x.data(), b.weight = c.w.data(), b.targets = c.y.data();
  b.lse = lse.data(), b.grad_entropy = c.ge.data();  // without the forward's entropy
  EXPECT_THROW(fused_logprob_backward(Device::CPU, b), std::invalid_argument);
  if (!fused_logprob_has_cuda()) {
    EXPECT_THROW(fused_logprob_forward(Device::CUDA, f), std::invalid_argument);
  }
}
