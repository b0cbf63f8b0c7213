// The PPO objective: GAE against its O(T^2) definition, whitening with merged statistics, and the
// clipped policy / value losses against hand-derived values and finite differences.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "common/error.h"
#include "rl/ppo.h"

using namespace ovr;

namespace {

auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

torch::Tensor f64(const std::vector<double>& v) { return torch::tensor(v, kF64); }

// Random sequence lengths, always including a length-1 sequence.
std::vector<int64_t> random_offsets(std::mt19937& rng, int sequences) {
  std::uniform_int_distribution<int64_t> len(1, 40);
  std::vector<int64_t> offsets{0};
  for (int i = 0; i < sequences; ++i) offsets.push_back(offsets.back() + (i == 1 ? 1 : len(rng)));
  return offsets;
}

torch::Tensor randn(std::mt19937& rng, int64_t n, double mean = 0, double std = 1) {
  std::normal_distribution<double> d(mean, std);
  std::vector<double> v(n);
  for (auto& x : v) x = d(rng);
  return f64(v);
}

// d loss_sum / d x_i by central differences, one token at a time (the loss is a sum of per-token
// terms, so the perturbation of token i only moves term i).
std::vector<double> finite_difference(const std::function<double(const torch::Tensor&)>& f, const torch::Tensor& x,
                                      double h = 1e-6) {
  std::vector<double> g(x.numel());
  for (int64_t i = 0; i < x.numel(); ++i) {
    torch::Tensor up = x.clone(), down = x.clone();
    up[i] += h;
    down[i] -= h;
    g[i] = (f(up) - f(down)) / (2 * h);
  }
  return g;
}

}  // namespace

// ---- GAE ----

TEST(Gae, matches_the_quadratic_definition_over_sequences_of_random_length) {
  std::mt19937 rng(1);
  std::vector<int64_t> offsets = random_offsets(rng, 7);
  int64_t n = offsets.back();
  torch::Tensor rewards = randn(rng, n).to(torch::kFloat32), values = randn(rng, n).to(torch::kFloat32);
  auto r = rewards.to(torch::kFloat64), v = values.to(torch::kFloat64);
  auto ra = r.accessor<double, 1>();
  auto va = v.accessor<double, 1>();
  for (std::pair<double, double> gl : std::vector<std::pair<double, double>>{{1, 1}, {0.99, 0.95}, {1, 0.9}, {0.5, 0}}) {
    double gamma = gl.first, lambda = gl.second;
    rl::Advantages got = rl::gae(rewards, values, offsets, gamma, lambda);
    ASSERT_EQ(got.advantages.scalar_type(), torch::kFloat32);
    ASSERT_EQ(got.returns.scalar_type(), torch::kFloat32);
    torch::Tensor a64 = got.advantages.to(torch::kFloat64), r64 = got.returns.to(torch::kFloat64);
    auto ga = a64.accessor<double, 1>();
    auto gr = r64.accessor<double, 1>();
    for (size_t s = 0; s + 1 < offsets.size(); ++s) {
      int64_t begin = offsets[s], end = offsets[s + 1];
      auto delta = [&](int64_t t) { return ra[t] + (t + 1 < end ? gamma * va[t + 1] : 0.0) - va[t]; };
      for (int64_t t = begin; t < end; ++t) {
        // A_t = sum_l (gamma lambda)^l delta_{t+l}, the definition the recursion implements.
        double want = 0;
        for (int64_t l = 0; t + l < end; ++l) want += std::pow(gamma * lambda, double(l)) * delta(t + l);
        double tol = 1e-6 * std::max(1.0, std::abs(want));
        EXPECT_NEAR(ga[t], want, tol) << "gamma " << gamma << " lambda " << lambda << " token " << t;
        EXPECT_NEAR(gr[t], want + va[t], 1e-6 * std::max(1.0, std::abs(want + va[t])));
      }
    }
  }
}

TEST(Gae, terminal_reward_with_unit_gamma_lambda_gives_reward_minus_value) {
  std::mt19937 rng(2);
  std::vector<int64_t> offsets = random_offsets(rng, 5);
  int64_t n = offsets.back();
  torch::Tensor values = randn(rng, n).to(torch::kFloat32);
  torch::Tensor rewards = torch::zeros({n});
  torch::Tensor final_reward = torch::zeros({n});  // R of the token's sequence, at every token
  for (size_t s = 0; s + 1 < offsets.size(); ++s) {
    float R = float(s % 2);  // 0/1 correctness rewards
    rewards[offsets[s + 1] - 1] = R;
    final_reward.slice(0, offsets[s], offsets[s + 1]).fill_(R);
  }
  rl::Advantages got = rl::gae(rewards, values, offsets, 1, 1);
  EXPECT_TRUE(torch::allclose(got.advantages, final_reward - values, 0, 1e-6));
  EXPECT_TRUE(torch::allclose(got.returns, final_reward, 0, 1e-6));
}

TEST(Gae, rejects_offsets_that_do_not_cover_the_tokens) {
  torch::Tensor x = torch::zeros({5});
  EXPECT_THROW(rl::gae(x, x, {0, 3}, 1, 1), Error);
  EXPECT_THROW(rl::gae(x, x, {0, 4, 3, 5}, 1, 1), Error);
  EXPECT_THROW(rl::gae(x, torch::zeros({4}), {0, 5}, 1, 1), Error);
  EXPECT_NO_THROW(rl::gae(x, x, {0, 2, 2, 5}, 1, 1));  // an empty sequence is fine
}

// ---- Whitening ----

TEST(Whiten, gives_zero_mean_and_unit_population_std) {
  std::mt19937 rng(3);
  torch::Tensor x = randn(rng, 1000, 3, 2).to(torch::kFloat32);
  double sum = 0, sumsq = 0;
  int64_t count = 0;
  rl::add_moments(x, &sum, &sumsq, &count);
  rl::MeanStd m = rl::moments(sum, sumsq, count);
  torch::Tensor y = rl::whiten(x, m.mean, m.std).to(torch::kFloat64);
  double mean = y.mean().item<double>();
  double std = ((y - mean) * (y - mean)).mean().sqrt().item<double>();
  EXPECT_NEAR(mean, 0, 1e-6);
  EXPECT_NEAR(std, 1, 1e-6);
}

TEST(Whiten, sums_merged_from_two_halves_equal_the_whole) {
  std::mt19937 rng(4);
  torch::Tensor x = randn(rng, 777, -1, 0.5).to(torch::kFloat32);
  double sum = 0, sumsq = 0;
  int64_t count = 0;
  rl::add_moments(x, &sum, &sumsq, &count);
  // Two "ranks" each add their half; an all-reduce would then add the accumulators.
  double s1 = 0, q1 = 0, s2 = 0, q2 = 0;
  int64_t c1 = 0, c2 = 0;
  rl::add_moments(x.slice(0, 0, 300), &s1, &q1, &c1);
  rl::add_moments(x.slice(0, 300), &s2, &q2, &c2);
  EXPECT_EQ(c1 + c2, count);
  EXPECT_NEAR(s1 + s2, sum, 1e-9 * std::abs(sum));
  EXPECT_NEAR(q1 + q2, sumsq, 1e-9 * sumsq);
  rl::MeanStd whole = rl::moments(sum, sumsq, count), merged = rl::moments(s1 + s2, q1 + q2, c1 + c2);
  EXPECT_NEAR(merged.mean, whole.mean, 1e-12);
  EXPECT_NEAR(merged.std, whole.std, 1e-12);
  EXPECT_NEAR(whole.mean, x.to(torch::kFloat64).mean().item<double>(), 1e-12);
}

TEST(Whiten, constant_input_has_zero_std) {
  rl::MeanStd m = rl::moments(6, 12, 3);  // {2, 2, 2}
  EXPECT_DOUBLE_EQ(m.mean, 2);
  EXPECT_DOUBLE_EQ(m.std, 0);
  rl::MeanStd none = rl::moments(0, 0, 0);
  EXPECT_EQ(none.mean, 0);
  EXPECT_EQ(none.std, 0);
}

// ---- Policy loss ----

namespace {

struct PolicyCase {
  rl::PolicyLoss loss;
  torch::Tensor grad;  // d loss_sum / d logprobs
};

// Tokens given as (ratio, advantage); old log-probabilities are arbitrary, logp = old + log r.
PolicyCase run_policy(const std::vector<double>& ratios, const std::vector<double>& advantages,
                      const rl::PolicyLossOptions& o) {
  std::vector<double> old(ratios.size()), lp(ratios.size());
  for (size_t i = 0; i < ratios.size(); ++i) {
    old[i] = -1.0 - 0.3 * double(i);
    lp[i] = old[i] + std::log(ratios[i]);
  }
  torch::Tensor logp = f64(lp).requires_grad_(true);
  rl::PolicyLoss l = rl::policy_loss(logp, f64(old), f64(advantages), o);
  l.loss_sum.backward();
  return {l, logp.grad()};
}

}  // namespace

TEST(PolicyLoss, inside_the_clip_range_the_gradient_is_minus_ratio_times_advantage) {
  PolicyCase c = run_policy({1.1, 0.9}, {2.0, -0.5}, {});
  EXPECT_NEAR(c.loss.loss_sum.item<double>(), -1.1 * 2.0 + 0.9 * 0.5, 1e-12);
  EXPECT_NEAR(c.grad[0].item<double>(), -1.1 * 2.0, 1e-12);
  EXPECT_NEAR(c.grad[1].item<double>(), 0.9 * 0.5, 1e-12);
  EXPECT_EQ(c.loss.clipped, 0);
}

TEST(PolicyLoss, ratio_above_range_with_positive_advantage_is_clipped) {
  PolicyCase c = run_policy({1.5}, {1.0}, {});
  EXPECT_NEAR(c.loss.loss_sum.item<double>(), -1.2, 1e-12);
  EXPECT_EQ(c.grad[0].item<double>(), 0);
  EXPECT_EQ(c.loss.clipped, 1);
}

TEST(PolicyLoss, ratio_below_range_with_negative_advantage_is_clipped) {
  PolicyCase c = run_policy({0.5}, {-1.0}, {});
  EXPECT_NEAR(c.loss.loss_sum.item<double>(), 0.8, 1e-12);
  EXPECT_EQ(c.grad[0].item<double>(), 0);
  EXPECT_EQ(c.loss.clipped, 1);
}

TEST(PolicyLoss, ratio_below_range_with_positive_advantage_keeps_its_gradient) {
  // min(0.5 A, 0.8 A) picks the unclipped term: the ratio moved the wrong way, so it may come back.
  PolicyCase c = run_policy({0.5}, {1.0}, {});
  EXPECT_NEAR(c.loss.loss_sum.item<double>(), -0.5, 1e-12);
  EXPECT_NEAR(c.grad[0].item<double>(), -0.5, 1e-12);
  EXPECT_EQ(c.loss.clipped, 0);
}

TEST(PolicyLoss, ratio_above_range_with_negative_advantage_keeps_its_gradient_without_dual_clip) {
  PolicyCase c = run_policy({4.0}, {-1.0}, {});
  EXPECT_NEAR(c.loss.loss_sum.item<double>(), 4.0, 1e-12);
  EXPECT_NEAR(c.grad[0].item<double>(), 4.0, 1e-12);
  EXPECT_EQ(c.loss.clipped, 0);
}

TEST(PolicyLoss, dual_clip_caps_negative_advantage_loss_at_c_times_minus_advantage) {
  rl::PolicyLossOptions o;
  o.dual_clip = 3;
  // Token 0: ratio 4 > c, capped at -c A = 6 with no gradient. Token 1: ratio 2 < c, untouched.
  // Token 2: positive advantage, the dual clip does not apply.
  PolicyCase c = run_policy({4.0, 2.0, 4.0}, {-2.0, -1.0, 1.0}, o);
  EXPECT_NEAR(c.loss.loss_sum.item<double>(), 6.0 + 2.0 - 1.2, 1e-12);
  EXPECT_EQ(c.grad[0].item<double>(), 0);
  EXPECT_NEAR(c.grad[1].item<double>(), 2.0, 1e-12);
  EXPECT_EQ(c.grad[2].item<double>(), 0);
  EXPECT_EQ(c.loss.clipped, 2);
  EXPECT_EQ(c.loss.dual_clipped, 1);
}

TEST(PolicyLoss, asymmetric_clip_uses_clip_high_above_and_clip_low_below) {
  rl::PolicyLossOptions o;
  o.clip_low = 0.2;
  o.clip_high = 0.28;
  // 1.25 is inside [0.8, 1.28]; 1.3 is above; 0.75 is below (with A < 0, clipped to 0.8).
  PolicyCase c = run_policy({1.25, 1.3, 0.75}, {1.0, 1.0, -1.0}, o);
  EXPECT_NEAR(c.loss.loss_sum.item<double>(), -1.25 - 1.28 + 0.8, 1e-12);
  EXPECT_NEAR(c.grad[0].item<double>(), -1.25, 1e-12);
  EXPECT_EQ(c.grad[1].item<double>(), 0);
  EXPECT_EQ(c.grad[2].item<double>(), 0);
  EXPECT_EQ(c.loss.clipped, 2);
}

TEST(PolicyLoss, reports_k3_kl_and_max_ratio) {
  PolicyCase c = run_policy({1.1, 0.7, 1.0}, {1.0, 1.0, 1.0}, {});
  double want = 0;
  for (double r : {1.1, 0.7, 1.0}) want += (r - 1) - std::log(r);
  EXPECT_NEAR(c.loss.approx_kl_sum, want, 1e-12);
  EXPECT_NEAR(c.loss.ratio_max, 1.1, 1e-12);
  PolicyCase same = run_policy({1.0, 1.0}, {1.0, -1.0}, {});
  EXPECT_EQ(same.loss.approx_kl_sum, 0);
}

TEST(PolicyLoss, gradient_matches_finite_differences) {
  std::mt19937 rng(5);
  for (double dual : {0.0, 3.0}) {
    rl::PolicyLossOptions o;
    o.clip_low = 0.2;
    o.clip_high = 0.28;
    o.dual_clip = dual;
    int64_t n = 300;
    torch::Tensor old = randn(rng, n, -2, 0.5);
    torch::Tensor lp = old + randn(rng, n, 0, 0.6);  // ratios from ~0.2 to ~6: every branch is hit
    torch::Tensor adv = randn(rng, n);
    torch::Tensor x = lp.clone().requires_grad_(true);
    rl::PolicyLoss l = rl::policy_loss(x, old, adv, o);
    l.loss_sum.backward();
    EXPECT_GT(l.clipped, 0);
    if (dual > 0) {
      EXPECT_GT(l.dual_clipped, 0);
    }
    auto f = [&](const torch::Tensor& p) { return rl::policy_loss(p, old, adv, o).loss_sum.item<double>(); };
    std::vector<double> fd = finite_difference(f, lp);
    for (int64_t i = 0; i < n; ++i) {
      double r = std::exp((lp[i] - old[i]).item<double>());
      // Skip the kinks, where the derivative jumps and a central difference straddles both sides.
      if (std::abs(r - 0.8) < 1e-4 || std::abs(r - 1.28) < 1e-4 || (dual > 0 && std::abs(r - dual) < 1e-4)) continue;
      EXPECT_NEAR(x.grad()[i].item<double>(), fd[i], 1e-6) << "token " << i << " ratio " << r;
    }
  }
}

TEST(PolicyLoss, float_inputs_give_a_float_loss) {
  torch::Tensor lp = torch::full({4}, -1.0f).requires_grad_(true);
  rl::PolicyLoss l = rl::policy_loss(lp, torch::full({4}, -1.0f), torch::ones({4}), {});
  EXPECT_EQ(l.loss_sum.scalar_type(), torch::kFloat32);
  EXPECT_NEAR(l.loss_sum.item<double>(), -4, 1e-6);
  EXPECT_DOUBLE_EQ(l.ratio_max, 1);
}

TEST(PolicyLoss, rejects_bad_options) {
  torch::Tensor x = torch::zeros({3});
  rl::PolicyLossOptions o;
  o.dual_clip = 0.5;
  EXPECT_THROW(rl::policy_loss(x, x, x, o), Error);
  o = {};
  o.clip_low = 1;
  EXPECT_THROW(rl::policy_loss(x, x, x, o), Error);
  EXPECT_THROW(rl::policy_loss(x, torch::zeros({2}), x, {}), Error);
}

// ---- Value loss ----

namespace {

struct ValueCase {
  rl::ValueLoss loss;
  torch::Tensor grad;  // d loss_sum / d values
};

ValueCase run_value(const std::vector<double>& v, const std::vector<double>& old, const std::vector<double>& ret,
                    double clip) {
  torch::Tensor x = f64(v).requires_grad_(true);
  rl::ValueLoss l = rl::value_loss(x, f64(old), f64(ret), clip);
  l.loss_sum.backward();
  return {l, x.grad()};
}

}  // namespace

TEST(ValueLoss, inside_the_clip_range_is_half_squared_error) {
  ValueCase c = run_value({1.1}, {1.0}, {2.0}, 0.2);
  EXPECT_NEAR(c.loss.loss_sum.item<double>(), 0.5 * 0.9 * 0.9, 1e-12);
  EXPECT_NEAR(c.grad[0].item<double>(), -0.9, 1e-12);
  EXPECT_EQ(c.loss.clipped, 0);
}

TEST(ValueLoss, outside_the_range_a_smaller_clipped_term_leaves_the_plain_loss) {
  // v moved 0.5 past the return: the clipped value 1.2 would be closer, so the max keeps (v - R)^2.
  ValueCase c = run_value({1.5}, {1.0}, {1.0}, 0.2);
  EXPECT_NEAR(c.loss.loss_sum.item<double>(), 0.5 * 0.25, 1e-12);
  EXPECT_NEAR(c.grad[0].item<double>(), 0.5, 1e-12);
  EXPECT_EQ(c.loss.clipped, 0);
}

TEST(ValueLoss, outside_the_range_a_larger_clipped_term_wins_with_zero_gradient) {
  // v moved 0.5 toward the return: the clipped value 1.2 is farther from 2, its error (0.64) wins.
  ValueCase c = run_value({1.5}, {1.0}, {2.0}, 0.2);
  EXPECT_NEAR(c.loss.loss_sum.item<double>(), 0.5 * 0.64, 1e-12);
  EXPECT_EQ(c.grad[0].item<double>(), 0);
  EXPECT_EQ(c.loss.clipped, 1);
}

TEST(ValueLoss, non_positive_clip_disables_clipping) {
  ValueCase c = run_value({1.5}, {1.0}, {2.0}, 0);
  EXPECT_NEAR(c.loss.loss_sum.item<double>(), 0.5 * 0.25, 1e-12);
  EXPECT_NEAR(c.grad[0].item<double>(), -0.5, 1e-12);
  EXPECT_EQ(c.loss.clipped, 0);
}

TEST(ValueLoss, gradient_matches_finite_differences) {
  std::mt19937 rng(6);
  int64_t n = 300;
  double clip = 0.2;
  torch::Tensor old = randn(rng, n);
  torch::Tensor v = old + randn(rng, n, 0, 0.3);
  torch::Tensor ret = randn(rng, n);
  torch::Tensor x = v.clone().requires_grad_(true);
  rl::ValueLoss l = rl::value_loss(x, old, ret, clip);
  l.loss_sum.backward();
  EXPECT_GT(l.clipped, 0);
  auto f = [&](const torch::Tensor& p) { return rl::value_loss(p, old, ret, clip).loss_sum.item<double>(); };
  std::vector<double> fd = finite_difference(f, v);
  for (int64_t i = 0; i < n; ++i) {
    double d = (v[i] - old[i]).item<double>();
    if (std::abs(std::abs(d) - clip) < 1e-4) continue;  // the clamp's kink
    // The other kink, where both errors are equal, lies at v = 2R - old -/+ clip: skip it too.
    double e = std::abs((v[i] - ret[i]).item<double>());
    double ec = std::abs((old[i] + std::clamp(d, -clip, clip) - ret[i]).item<double>());
    if (std::abs(e - ec) < 1e-4 && std::abs(d) > clip) continue;
    EXPECT_NEAR(x.grad()[i].item<double>(), fd[i], 1e-6) << "token " << i;
  }
}

// ---- Optional terms ----

TEST(KlPenalty, is_zero_for_equal_logprobs_and_positive_otherwise) {
  torch::Tensor lp = f64({-1.0, -2.0, -0.5});
  EXPECT_EQ(rl::kl_penalty_sum(lp, lp).item<double>(), 0);
  torch::Tensor ref = f64({-1.5, -1.0, -0.5});
  double want = 0;
  for (double d : {-0.5, 1.0, 0.0}) want += std::exp(d) - d - 1;  // d = ref - logp
  double got = rl::kl_penalty_sum(lp, ref).item<double>();
  EXPECT_GT(got, 0);
  EXPECT_NEAR(got, want, 1e-12);
}

