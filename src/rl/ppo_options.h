// ovr_ppo's options, read and checked once (ConfigError naming the option on a bad value).
#pragma once
#include <cstdint>
#include <string>

#include "common/config.h"
#include "dist/zero_optimizer.h"
#include "io/dtype.h"
#include "rl/advantage.h"
#include "rl/ppo.h"

namespace ovr::rl {

struct PpoOptions {
  std::string policy, critic, rollouts, policy_output, critic_output, reference, preprocessor, train, metrics;
  AdvantageEstimator advantage = AdvantageEstimator::Gae;
  double gamma = 1, lambda = 1;      // gae
  bool whiten_advantages = true;     // gae: over the batch, all ranks
  double group_std_eps = 1e-6;       // grpo
  PolicyLossOptions clip;
  double value_clip = 0.2, kl_coef = 0, entropy_coef = 0;
  double policy_lr = 1e-6, critic_lr = 5e-6, max_grad_norm = 1;
  int64_t warmup_steps = 50;
  dist::AdamWOptions adam;
  int policy_steps = 1, critic_steps = 4, minibatches = 1;
  int64_t seq_len = 8192;
  int zero_stage = 2;
  int64_t bucket_elems = 0;          // fp32 elements per communication bucket
  io::DType save_dtype = io::DType::F32;
  uint64_t seed = 0;
  std::string run_config;            // the command line as JSON, for the checkpoints

  bool with_critic() const { return uses_critic(advantage); }
};

void add_ppo_options(Config& cfg);
PpoOptions ppo_options(const Config& cfg);

}  // namespace ovr::rl
