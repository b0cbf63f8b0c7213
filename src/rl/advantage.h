// The advantage-estimator seam: how a response token's advantage is made from the rewards.
//   gae:  PPO with a critic (the paper): GAE(gamma, lambda) on the critic's values (rl/ppo.h),
//         whitened over the batch unless --no-advantage-norm.
//   grpo: no critic (Shao et al. 2024, DeepSeekMath): a sample's reward normalised within its group,
//         the n samples of one prompt: (r - mean) / (std + eps), std Bessel-corrected as verl,
//         EasyR1 and TRL compute it (torch.std); the same advantage for every token of the response.
//   rloo: no critic (Ahmadian et al. 2024): the reward minus the mean reward of the other n - 1
//         samples of its prompt, an unbiased leave-one-out baseline; every token of the response.
// A group of one sample has no baseline to compare with and gets advantage 0 under grpo and rloo
// (verl keeps the raw reward there; a lone sample then pushes its tokens by its raw reward).
// All ranks hold all rewards (the rollout file), so the group estimators need no communication.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ovr::rl {

enum class AdvantageEstimator { Gae, Grpo, Rloo };

AdvantageEstimator parse_advantage_estimator(const std::string& name);  // ConfigError naming --advantage
const char* advantage_estimator_name(AdvantageEstimator e);
inline bool uses_critic(AdvantageEstimator e) { return e == AdvantageEstimator::Gae; }

// One advantage per sample for grpo and rloo: rewards[i] is sample i's reward, group[i] its prompt's
// group (any integer ids). Computed in double. Throws ovr::Error for gae (it needs values) or
// mismatched sizes; eps must be >= 0 (grpo's std epsilon, verl's default 1e-6).
std::vector<double> group_advantages(AdvantageEstimator e, const std::vector<double>& rewards,
                                     const std::vector<int64_t>& group, double eps);

}  // namespace ovr::rl
