#include "rl/advantage.h"

#include <cmath>
#include <map>

#include "common/error.h"

namespace ovr::rl {

AdvantageEstimator parse_advantage_estimator(const std::string& name) {
  if (name == "gae") return AdvantageEstimator::Gae;
  if (name == "grpo") return AdvantageEstimator::Grpo;
  if (name == "rloo") return AdvantageEstimator::Rloo;
  throw ConfigError("--advantage: expected gae, grpo or rloo, got '" + name + "'");
}

const char* advantage_estimator_name(AdvantageEstimator e) {
  switch (e) {
    case AdvantageEstimator::Gae: return "gae";
    case AdvantageEstimator::Grpo: return "grpo";
    case AdvantageEstimator::Rloo: return "rloo";
  }
  return "?";
}

std::vector<double> group_advantages(AdvantageEstimator e, const std::vector<double>& rewards,
                                     const std::vector<int64_t>& group, double eps) {
  if (e == AdvantageEstimator::Gae) throw Error("group_advantages: gae needs the critic's values (rl::gae)");
  if (rewards.size() != group.size()) throw Error("group_advantages: one group id per reward expected");
  if (!(eps >= 0)) throw Error("group_advantages: eps must be >= 0");
  struct Sums {
    double sum = 0;
    int64_t n = 0;
  };
  std::map<int64_t, Sums> sums;
  for (size_t i = 0; i < rewards.size(); ++i) sums[group[i]].sum += rewards[i], sums[group[i]].n += 1;
  // Deviations from the mean, summed in a second pass (no cancellation of sum(x^2) - n mean^2).
  std::map<int64_t, double> sq;
  for (size_t i = 0; i < rewards.size(); ++i) {
    const Sums& s = sums[group[i]];
    const double d = rewards[i] - s.sum / double(s.n);
    sq[group[i]] += d * d;
  }
  std::vector<double> out(rewards.size(), 0.0);
  for (size_t i = 0; i < rewards.size(); ++i) {
    const Sums& s = sums[group[i]];
    if (s.n < 2) continue;  // no baseline: advantage 0
    const double mean = s.sum / double(s.n), d = rewards[i] - mean;
    if (d == 0) continue;  // an all-equal group has std 0 too: advantage 0, not 0 / 0 when eps = 0
    if (e == AdvantageEstimator::Grpo) {
      const double std = std::sqrt(sq[group[i]] / double(s.n - 1));
      out[i] = d / (std + eps);
    } else {  // rloo: r_i - (sum - r_i) / (n - 1) = n / (n - 1) * (r_i - mean)
      out[i] = rewards[i] - (s.sum - rewards[i]) / double(s.n - 1);
    }
  }
  return out;
}

}  // namespace ovr::rl
