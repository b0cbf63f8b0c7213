// The AdamW, sampling and GAE kernels' CPU twins against plain references written here: AdamW in
// double and as the fp32 op sequence of ZeroAdamW::step, sampling against a sort-based reference
// of sample_token's semantics (tests/sampling_reference.h), GAE against rl::gae's loop. Errors too.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include "kernels/adamw.h"
#include "kernels/gae.h"
#include "kernels/sampling.h"
#include "tests/sampling_reference.h"

using namespace ovr::kernels;
using ovr::test::bf16_bits;
using ovr::test::bf16_value;
using ovr::test::reference_sample;

namespace {

struct AdamWState {
  std::vector<float> p, m, v, g;
};

AdamWState random_state(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  AdamWState s;
  for (int64_t i = 0; i < n; ++i) {
    s.p.push_back(nd(rng));
    s.m.push_back(0.1f * nd(rng));
    s.v.push_back(0.01f * std::abs(nd(rng)));
    s.g.push_back(nd(rng));
  }
  return s;
}

AdamWArgs args_for(AdamWState& s, int64_t step, double wd, double scale) {
  AdamWArgs a;
  a.n = int64_t(s.p.size());
  a.master = s.p.data(), a.exp_avg = s.m.data(), a.exp_avg_sq = s.v.data(), a.grad = s.g.data();
  a.lr = 1e-3, a.beta1 = 0.9, a.beta2 = 0.95, a.eps = 1e-8, a.weight_decay = wd, a.step = step, a.grad_scale = scale;
  return a;
}

}  // namespace

TEST(AdamWKernel, matches_double_reference_over_several_steps_with_clipping_and_decay) {
  for (double wd : {0.0, 0.1}) {
    for (double scale : {1.0, 0.37}) {
      SCOPED_TRACE(testing::Message() << "wd=" << wd << " grad_scale=" << scale);
      AdamWState s = random_state(1003, 7);  // not a multiple of 4 or 8: vector tails
      std::vector<double> p(s.p.begin(), s.p.end()), m(s.m.begin(), s.m.end()), v(s.v.begin(), s.v.end());
      for (int64_t step = 1; step <= 5; ++step) {
        const AdamWArgs a = args_for(s, step, wd, scale);
        adamw_step(Device::CPU, a);
        const double b1 = 1 - std::pow(a.beta1, double(step)), b2 = 1 - std::pow(a.beta2, double(step));
        for (size_t i = 0; i < p.size(); ++i) {
          const double g = double(s.g[i]) * scale;
          p[i] *= 1 - a.lr * wd;
          m[i] = m[i] * a.beta1 + (1 - a.beta1) * g;
          v[i] = v[i] * a.beta2 + (1 - a.beta2) * g * g;
          p[i] += -a.lr / b1 * m[i] / (std::sqrt(v[i]) / std::sqrt(b2) + a.eps);
        }
      }
      double err_p = 0, err_m = 0, err_v = 0;
      for (size_t i = 0; i < p.size(); ++i) {
        err_p = std::max(err_p, std::abs(s.p[i] - p[i]) / std::max(1.0, std::abs(p[i])));
        err_m = std::max(err_m, std::abs(s.m[i] - m[i]) / std::max(1e-3, std::abs(m[i])));
        err_v = std::max(err_v, std::abs(s.v[i] - v[i]) / std::max(1e-6, std::abs(v[i])));
      }
      EXPECT_LE(err_p, 1e-6);
      EXPECT_LE(err_m, 1e-5);
      EXPECT_LE(err_v, 1e-5);
    }
  }
}

TEST(AdamWKernel, equals_the_fp32_op_sequence_of_zero_optimizer_bit_for_bit) {
  // ZeroAdamW::step's LibTorch ops, each rounded to fp32 (no FMA: this file and the twin are built
  // without -mfma), with CUDA LibTorch's reciprocal-multiply for the division by sqrt(bias2).
  AdamWState s = random_state(517, 3);
  AdamWState r = s;
  const AdamWArgs a = args_for(s, 3, 0.05, 0.5);
  adamw_step(Device::CPU, a);
  const float decay = float(1 - a.lr * a.weight_decay), b1 = float(a.beta1), b2 = float(a.beta2);
  const float omb1 = float(1 - a.beta1), omb2 = float(1 - a.beta2);
  const double bias1 = 1 - std::pow(a.beta1, 3.0), bias2 = 1 - std::pow(a.beta2, 3.0);
  const float inv = 1.0f / float(std::sqrt(bias2)), eps = float(a.eps), step_size = float(-a.lr / bias1);
  for (size_t i = 0; i < r.p.size(); ++i) {
    const float g = r.g[i] * float(a.grad_scale);
    const float p = r.p[i] * decay;
    const float mm = r.m[i] * b1;
    const float m = mm + omb1 * g;
    const float vv = r.v[i] * b2;
    const float v = vv + (omb2 * g) * g;
    const float sq = std::sqrt(v);
    const float denom = sq * inv + eps;
    const float q = m / denom;
    const float pn = p + step_size * q;
    ASSERT_EQ(s.p[i], pn) << i;
    ASSERT_EQ(s.m[i], m) << i;
    ASSERT_EQ(s.v[i], v) << i;
  }
}

TEST(AdamWKernel, param_out_is_the_updated_master_in_fp32_or_rounded_to_bf16) {
  AdamWState s = random_state(259, 5), t = s;
  std::vector<float> out_f32(259);
  std::vector<uint16_t> out_bf16(259);
  AdamWArgs a = args_for(s, 1, 0.1, 1.0);
  a.param_out = out_f32.data();
  adamw_step(Device::CPU, a);
  AdamWArgs b = args_for(t, 1, 0.1, 1.0);
  b.param_out = out_bf16.data(), b.param_dtype = DType::BF16;
  adamw_step(Device::CPU, b);
  for (size_t i = 0; i < s.p.size(); ++i) {
    ASSERT_EQ(out_f32[i], s.p[i]);
    ASSERT_EQ(t.p[i], s.p[i]);
    ASSERT_EQ(out_bf16[i], bf16_bits(s.p[i]));
  }
  // Round to nearest even at the halfway point: 1 + 2^-8 lies between two bf16 values.
  EXPECT_EQ(bf16_bits(1.0f + 0x1p-8f), bf16_bits(1.0f));
  EXPECT_EQ(bf16_bits(1.0f + 3 * 0x1p-8f), 0x3f82);
}

TEST(AdamWKernel, grad_sum_squares_matches_double_sum) {
  const AdamWState s = random_state(100003, 11);
  double ref = 0;
  for (float g : s.g) ref += double(g) * g;
  double out = -1;
  grad_sum_squares(Device::CPU, s.g.data(), int64_t(s.g.size()), &out);
  EXPECT_NEAR(out, ref, 1e-12 * ref);
  grad_sum_squares(Device::CPU, nullptr, 0, &out);
  EXPECT_EQ(out, 0.0);
}

TEST(AdamWKernel, bad_arguments_are_invalid_argument) {
  AdamWState s = random_state(8, 1);
  const AdamWArgs good = args_for(s, 1, 0.0, 1.0);
  AdamWArgs a = good;
  a.step = 0;
  EXPECT_THROW(adamw_step(Device::CPU, a), std::invalid_argument);
  a = good, a.grad = nullptr;
  EXPECT_THROW(adamw_step(Device::CPU, a), std::invalid_argument);
  a = good, a.n = -1;
  EXPECT_THROW(adamw_step(Device::CPU, a), std::invalid_argument);
  a = good, a.beta2 = 1.0;
  EXPECT_THROW(adamw_step(Device::CPU, a), std::invalid_argument);
  a = good, a.grad_scale = 0;
  EXPECT_THROW(adamw_step(Device::CPU, a), std::invalid_argument);
  a = good, a.n = 0, a.master = nullptr;
  EXPECT_NO_THROW(adamw_step(Device::CPU, a));
  double out;
  EXPECT_THROW(grad_sum_squares(Device::CPU, s.g.data(), 8, nullptr), std::invalid_argument);
  if (!have_cuda()) {
    EXPECT_THROW(adamw_step(Device::CUDA, good), std::invalid_argument);
    EXPECT_THROW(grad_sum_squares(Device::CUDA, s.g.data(), 8, &out), std::invalid_argument);
  }
}

// ---- Sampling ----

namespace {

struct SampleBatch {
  int64_t rows = 0, V = 0;
  std::vector<float> logits;  // [rows, V], bf16-representable when `bf16`
  std::vector<uint16_t> logits_bf16;
  std::vector<float> T, top_p;
  std::vector<int64_t> top_k;
  std::vector<uint8_t> greedy;
  std::vector<double> u;
};

// Logits on a grid of 1/64 (two distinct logits are never within rounding of each other; equal ones
// tie exactly), in several shapes: spread, peaked, and few distinct values (many ties).
SampleBatch random_batch(int64_t rows, int64_t V, unsigned seed, bool bf16) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0, 1);
  std::uniform_real_distribution<double> ud(0, 1);
  SampleBatch b;
  b.rows = rows, b.V = V;
  for (int64_t r = 0; r < rows; ++r) {
    const int shape = int(rng() % 4);
    const double scale = shape == 0 ? 0.5 : shape == 1 ? 3.0 : 1.0;
    for (int64_t i = 0; i < V; ++i) {
      double l = shape == 3 ? double(rng() % 4) : std::round(nd(rng) * scale * 64) / 64;
      if (shape == 2 && i % 97 == 5) l += 8;  // a few dominant tokens
      float f = float(l);
      if (bf16) f = bf16_value(bf16_bits(f));
      b.logits.push_back(f);
      b.logits_bf16.push_back(bf16_bits(f));
    }
    const float Ts[] = {0.5f, 0.7f, 1.0f, 1.3f};
    b.T.push_back(Ts[rng() % 4]);
    const int mode = int(rng() % 5);  // plain, top_p only, top_k only, both, greedy
    const float ps[] = {0.3f, 0.5f, 0.9f, 0.95f, float(0.05 + 0.9 * ud(rng))};
    b.top_p.push_back(mode == 1 || mode == 3 ? ps[rng() % 5] : 1.0f);
    const int64_t ks[] = {1, 2, 5, V, V + 3, int64_t(1 + rng() % uint64_t(V))};
    b.top_k.push_back(mode == 2 || mode == 3 ? ks[rng() % 6] : 0);
    b.greedy.push_back(mode == 4);
    b.u.push_back(ud(rng));
  }
  return b;
}

struct SampleOut {
  std::vector<int64_t> token;
  std::vector<float> logprob;
};

SampleOut run_cpu(const SampleBatch& b, bool bf16) {
  SampleOut o{std::vector<int64_t>(b.rows), std::vector<float>(b.rows)};
  SamplingArgs a;
  a.rows = b.rows, a.V = b.V, a.dtype = bf16 ? DType::BF16 : DType::F32;
  a.logits = bf16 ? static_cast<const void*>(b.logits_bf16.data()) : b.logits.data();
  a.temperature = b.T.data(), a.top_p = b.top_p.data(), a.top_k = b.top_k.data(), a.greedy = b.greedy.data();
  a.uniforms = b.u.data(), a.token = o.token.data(), a.logprob = o.logprob.data();
  sample_tokens(Device::CPU, a);
  return o;
}

}  // namespace

TEST(SamplingKernel, cpu_twin_matches_sort_based_reference_on_random_rows) {
  int64_t compared = 0, skipped = 0;
  unsigned seed = 1;
  for (int64_t V : {1, 2, 7, 50, 1000, 5003}) {
    for (bool bf16 : {false, true}) {
      SCOPED_TRACE(testing::Message() << "V=" << V << " bf16=" << bf16);
      const SampleBatch b = random_batch(V >= 1000 ? 150 : 400, V, seed++, bf16);
      const SampleOut o = run_cpu(b, bf16);
      for (int64_t r = 0; r < b.rows; ++r) {
        const std::vector<float> row(b.logits.begin() + r * V, b.logits.begin() + (r + 1) * V);
        const auto ref = reference_sample(row, b.T[r], b.top_p[r], b.top_k[r], b.greedy[r], b.u[r]);
        if (!ref.safe) {
          ++skipped;
          continue;
        }
        ++compared;
        ASSERT_EQ(o.token[r], ref.token) << "row " << r << " T=" << b.T[r] << " top_p=" << b.top_p[r]
                                         << " top_k=" << b.top_k[r] << " greedy=" << int(b.greedy[r]) << " u=" << b.u[r];
        ASSERT_NEAR(o.logprob[r], ref.logprob, 1e-4 * std::max(1.0, std::abs(ref.logprob))) << "row " << r;
      }
    }
  }
  // Rows near a boundary are rare: the comparison must cover nearly all of them.
  EXPECT_GT(compared, 20 * skipped) << compared << " compared, " << skipped << " skipped";
}

TEST(SamplingKernel, ties_rank_by_lower_id_in_the_cut_and_draw_in_id_order) {
  // Six equal logits: top_k = 2 keeps ids 0 and 1 only; with u = 0.75 the draw is the second.
  SampleBatch b;
  b.rows = 1, b.V = 6, b.logits.assign(6, 1.0f), b.T = {1.0f}, b.top_p = {1.0f}, b.top_k = {2}, b.greedy = {0}, b.u = {0.75};
  SampleOut o = run_cpu(b, false);
  EXPECT_EQ(o.token[0], 1);
  EXPECT_NEAR(o.logprob[0], std::log(0.5), 1e-6);
  // top_p = 0.5 of six equal tokens: the shortest prefix reaching 0.5 is three tokens (ids 0..2).
  b.top_k = {0}, b.top_p = {0.5f}, b.u = {0.99};
  o = run_cpu(b, false);
  EXPECT_EQ(o.token[0], 2);
  EXPECT_NEAR(o.logprob[0], std::log(1.0 / 3), 1e-6);
  // greedy: the first maximum, logprob under softmax(logits) (T ignored).
  b.logits = {0.0f, 2.0f, 1.0f, 2.0f, 0.5f, -1.0f}, b.greedy = {1}, b.T = {0.1f};
  o = run_cpu(b, false);
  EXPECT_EQ(o.token[0], 1);
  double S = 0;
  for (float l : b.logits) S += std::exp(double(l) - 2.0);
  EXPECT_NEAR(o.logprob[0], -std::log(S), 1e-6);
}

TEST(SamplingKernel, missing_per_row_arrays_mean_plain_sampling) {
  const SampleBatch b = random_batch(50, 300, 99, false);
  SampleOut o{std::vector<int64_t>(b.rows), std::vector<float>(b.rows)};
  SamplingArgs a;
  a.rows = b.rows, a.V = b.V, a.logits = b.logits.data(), a.uniforms = b.u.data();
  a.token = o.token.data(), a.logprob = o.logprob.data();
  sample_tokens(Device::CPU, a);
  for (int64_t r = 0; r < b.rows; ++r) {
    const std::vector<float> row(b.logits.begin() + r * b.V, b.logits.begin() + (r + 1) * b.V);
    const auto ref = reference_sample(row, 1.0f, 1.0f, 0, false, b.u[r]);
    if (ref.safe) {
      EXPECT_EQ(o.token[r], ref.token) << r;
    }
  }
}

TEST(SamplingKernel, bad_arguments_are_invalid_argument) {
  SampleBatch b = random_batch(3, 10, 4, false);
  std::fill(b.greedy.begin(), b.greedy.end(), 0);
  std::vector<int64_t> tok(3);
  std::vector<float> lp(3);
  SamplingArgs good;
  good.rows = 3, good.V = 10, good.logits = b.logits.data(), good.temperature = b.T.data(), good.top_p = b.top_p.data();
  good.top_k = b.top_k.data(), good.greedy = b.greedy.data(), good.uniforms = b.u.data();
  good.token = tok.data(), good.logprob = lp.data();
  EXPECT_NO_THROW(sample_tokens(Device::CPU, good));
  auto expect_bad = [&](auto mutate, const char* what) {
    SampleBatch c = b;
    SamplingArgs a = good;
    a.temperature = c.T.data(), a.top_p = c.top_p.data(), a.top_k = c.top_k.data(), a.uniforms = c.u.data();
    mutate(a, c);
    EXPECT_THROW(sample_tokens(Device::CPU, a), std::invalid_argument) << what;
  };
  expect_bad([](SamplingArgs&, SampleBatch& c) { c.T[1] = 0; }, "temperature 0");
  expect_bad([](SamplingArgs&, SampleBatch& c) { c.top_p[2] = 0; }, "top_p 0");
  expect_bad([](SamplingArgs&, SampleBatch& c) { c.top_p[0] = 1.5f; }, "top_p > 1");
  expect_bad([](SamplingArgs&, SampleBatch& c) { c.top_k[0] = -1; }, "top_k < 0");
  expect_bad([](SamplingArgs&, SampleBatch& c) { c.u[0] = 1.0; }, "u = 1");
  expect_bad([](SamplingArgs& a, SampleBatch&) { a.uniforms = nullptr; }, "no uniforms");
  expect_bad([](SamplingArgs& a, SampleBatch&) { a.V = 0; }, "V = 0");
  // A greedy row's sampling parameters are not used, so not checked.
  SampleBatch c = b;
  c.T[0] = 0, c.greedy[0] = 1;
  SamplingArgs a = good;
  a.temperature = c.T.data(), a.greedy = c.greedy.data();
  EXPECT_NO_THROW(sample_tokens(Device::CPU, a));
  if (!have_cuda()) {
    EXPECT_THROW(sample_tokens(Device::CUDA, good), std::invalid_argument);
  }
}

// ---- GAE ----

namespace {

// rl::gae's loop (src/rl/ppo.cpp), in double.
void gae_reference(const std::vector<float>& r, const std::vector<float>& v, const std::vector<int64_t>& off,
                   double gamma, double lambda, std::vector<double>& adv, std::vector<double>& ret) {
  adv.assign(r.size(), 0), ret.assign(r.size(), 0);
  for (size_t i = 0; i + 1 < off.size(); ++i) {
    double next_value = 0, next_advantage = 0;
    for (int64_t t = off[i + 1] - 1; t >= off[i]; --t) {
      double delta = double(r[t]) + gamma * next_value - double(v[t]);
      adv[t] = delta + gamma * lambda * next_advantage;
      ret[t] = adv[t] + double(v[t]);
      next_value = v[t];
      next_advantage = adv[t];
    }
  }
}

}  // namespace

TEST(GaeKernel, cpu_twin_equals_rl_gae_loop_bit_for_bit) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0, 1);
  const std::vector<int64_t> lengths = {0, 1, 5, 0, 2048, 2049, 3, 10000, 0};
  std::vector<int64_t> off = {0};
  for (int64_t L : lengths) off.push_back(off.back() + L);
  const int64_t n = off.back();
  std::vector<float> r(n), v(n), adv(n), ret(n);
  for (auto& x : r) x = nd(rng);
  for (auto& x : v) x = nd(rng);
  for (auto [gamma, lambda] : {std::pair{1.0, 1.0}, std::pair{0.99, 0.95}, std::pair{0.0, 0.5}}) {
    GaeArgs a;
    a.n = n, a.sequences = int64_t(lengths.size()), a.rewards = r.data(), a.values = v.data(), a.offsets = off.data();
    a.gamma = gamma, a.lambda = lambda, a.advantages = adv.data(), a.returns = ret.data();
    gae(Device::CPU, a);
    std::vector<double> ra, rr;
    gae_reference(r, v, off, gamma, lambda, ra, rr);
    for (int64_t t = 0; t < n; ++t) {
      ASSERT_EQ(adv[t], float(ra[t])) << t;
      ASSERT_EQ(ret[t], float(rr[t])) << t;
    }
  }
}

TEST(GaeKernel, final_reward_with_gamma_lambda_one_telescopes_to_reward_minus_value) {
  const std::vector<int64_t> off = {0, 4, 4, 7};
  std::vector<float> r = {0, 0, 0, 2.5f, 0, 0, -1}, v = {0.5f, 1, -2, 0.25f, 3, 0, 1}, adv(7), ret(7);
  GaeArgs a;
  a.n = 7, a.sequences = 3, a.rewards = r.data(), a.values = v.data(), a.offsets = off.data();
  a.advantages = adv.data(), a.returns = ret.data();
  gae(Device::CPU, a);
  for (int t = 0; t < 7; ++t) {
    const float R = t < 4 ? 2.5f : -1.0f;
    EXPECT_FLOAT_EQ(adv[t], R - v[t]) << t;
    EXPECT_FLOAT_EQ(ret[t], R) << t;
  }
}

TEST(GaeKernel, bad_arguments_are_invalid_argument) {
  std::vector<float> r(4), v(4), adv(4), ret(4);
  std::vector<int64_t> off = {0, 2, 4};
  GaeArgs good;
  good.n = 4, good.sequences = 2, good.rewards = r.data(), good.values = v.data(), good.offsets = off.data();
  good.advantages = adv.data(), good.returns = ret.data();
  EXPECT_NO_THROW(gae(Device::CPU, good));
  GaeArgs a = good;
  a.gamma = 1.5;
  EXPECT_THROW(gae(Device::CPU, a), std::invalid_argument);
  a = good, a.returns = nullptr;
  EXPECT_THROW(gae(Device::CPU, a), std::invalid_argument);
  std::vector<int64_t> bad = {0, 3, 2};
  a = good, a.offsets = bad.data();
  EXPECT_THROW(gae(Device::CPU, a), std::invalid_argument);
  std::vector<int64_t> short_end = {0, 2, 3};
  a = good, a.offsets = short_end.data();
  EXPECT_THROW(gae(Device::CPU, a), std::invalid_argument);
  if (!have_cuda()) {
    EXPECT_THROW(gae(Device::CUDA, good), std::invalid_argument);
  }
}
