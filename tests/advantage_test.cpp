// The critic-free advantage estimators (rl/advantage.h) against hand-computed groups.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/error.h"
#include "rl/advantage.h"

using namespace ovr;
using rl::AdvantageEstimator;

TEST(GroupAdvantages, grpo_normalises_each_group_by_its_mean_and_bessel_std) {
  // Group 7: rewards 1, 0, 0, 1 -> mean 0.5, sample std sqrt(4 * 0.25 / 3) = sqrt(1/3).
  // Group 3: rewards 1, 0, 0 -> mean 1/3, sample std sqrt((4/9 + 1/9 + 1/9) / 2) = sqrt(1/3).
  const std::vector<double> r = {1, 1, 0, 0, 0, 0, 1};
  const std::vector<int64_t> g = {7, 3, 7, 3, 7, 3, 7};
  const double eps = 1e-6, s = std::sqrt(1.0 / 3.0);
  const std::vector<double> a = rl::group_advantages(AdvantageEstimator::Grpo, r, g, eps);
  const std::vector<double> want = {0.5 / (s + eps), (2.0 / 3) / (s + eps), -0.5 / (s + eps), -(1.0 / 3) / (s + eps),
                                    -0.5 / (s + eps), -(1.0 / 3) / (s + eps), 0.5 / (s + eps)};
  ASSERT_EQ(a.size(), want.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], want[i], 1e-12) << "sample " << i;
}

TEST(GroupAdvantages, equal_rewards_in_a_group_give_zero_advantage_not_a_division_by_zero) {
  for (double reward : {0.0, 1.0, -0.5})
    for (auto e : {AdvantageEstimator::Grpo, AdvantageEstimator::Rloo}) {
      const auto a = rl::group_advantages(e, {reward, reward, reward, reward}, {0, 0, 0, 0}, 1e-6);
      for (double x : a) EXPECT_EQ(x, 0.0) << rl::advantage_estimator_name(e) << " reward " << reward;
    }
  // Even with eps = 0 an all-equal group is 0 / 0 nowhere: the deviations are exactly zero.
  for (double x : rl::group_advantages(AdvantageEstimator::Grpo, {1, 1}, {0, 0}, 0.0)) EXPECT_EQ(x, 0.0);
}

TEST(GroupAdvantages, the_std_epsilon_bounds_the_advantage_of_a_nearly_equal_group) {
  // Rewards 1 and 1 + 2d: mean 1 + d, sample std d * sqrt(2); with eps >> d the advantages shrink
  // to +-d / eps instead of +-1 / sqrt(2).
  const double d = 1e-9;
  const auto tight = rl::group_advantages(AdvantageEstimator::Grpo, {1, 1 + 2 * d}, {0, 0}, 1e-3);
  EXPECT_NEAR(tight[0], -d / (d * std::sqrt(2.0) + 1e-3), 1e-12);
  EXPECT_LT(std::abs(tight[1]), 1e-5);
  const auto loose = rl::group_advantages(AdvantageEstimator::Grpo, {0, 1}, {0, 0}, 0.0);
  EXPECT_NEAR(loose[0], -1 / std::sqrt(2.0), 1e-15);
  EXPECT_NEAR(loose[1], 1 / std::sqrt(2.0), 1e-15);
}

TEST(GroupAdvantages, rloo_subtracts_the_mean_of_the_other_samples) {
  // Group {1, 0, 0, 1}: sample 0 -> 1 - (0 + 0 + 1) / 3 = 2/3; sample 1 -> 0 - 2/3.
  const auto a = rl::group_advantages(AdvantageEstimator::Rloo, {1, 0, 0, 1, 0.5}, {0, 0, 0, 0, 1}, 1e-6);
  EXPECT_NEAR(a[0], 2.0 / 3, 1e-15);
  EXPECT_NEAR(a[1], -2.0 / 3, 1e-15);
  EXPECT_NEAR(a[2], -2.0 / 3, 1e-15);
  EXPECT_NEAR(a[3], 2.0 / 3, 1e-15);
  EXPECT_EQ(a[4], 0.0);  // a group of one has no baseline
  // The leave-one-out baseline sums to zero over a group, like the group mean's.
  EXPECT_NEAR(a[0] + a[1] + a[2] + a[3], 0.0, 1e-15);
}

TEST(GroupAdvantages, a_group_of_one_sample_gets_zero_under_grpo) {
  const auto a = rl::group_advantages(AdvantageEstimator::Grpo, {1, 0, 1}, {5, 6, 6}, 1e-6);
  EXPECT_EQ(a[0], 0.0);
  EXPECT_LT(a[1], 0.0);
  EXPECT_GT(a[2], 0.0);
}

TEST(GroupAdvantages, bad_arguments_are_errors_naming_the_problem) {
  EXPECT_THROW(rl::group_advantages(AdvantageEstimator::Gae, {1}, {0}, 1e-6), Error);
  EXPECT_THROW(rl::group_advantages(AdvantageEstimator::Grpo, {1, 2}, {0}, 1e-6), Error);
  EXPECT_THROW(rl::group_advantages(AdvantageEstimator::Grpo, {1}, {0}, -1), Error);
  EXPECT_EQ(rl::parse_advantage_estimator("grpo"), AdvantageEstimator::Grpo);
  EXPECT_EQ(rl::parse_advantage_estimator("gae"), AdvantageEstimator::Gae);
  EXPECT_EQ(rl::parse_advantage_estimator("rloo"), AdvantageEstimator::Rloo);
  try {
    rl::parse_advantage_estimator("ppo");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--advantage"), std::string::npos) << e.what();
  }
}
