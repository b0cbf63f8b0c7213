// ovr_ppo: the PPO update of one RL iteration (Open-Reasoner-Zero's recipe with a critic).
//
//   load policy_k, critic_k (at the first iteration: the policy's backbone + a new value head)
//   and rollouts_k; every sample becomes a document prompt + response whose targets are the
//   response tokens (train/sft_batch), packed into rows; samples are split into minibatches by
//   a seeded shuffle; rank r takes a contiguous share of each minibatch's rows.
//   1. with the current weights and no gradients: log-probs (the "old" policy; the behaviour
//      log-probs from generation only measure the train/inference mismatch) and values;
//   2. reward on the last response token, GAE(gamma, lambda) (default 1, 1: A = R - V), batch
//      whitening of the advantages over all ranks;
//   3. policy: --policy-steps passes over the minibatches, each an AdamW (ZeRO) step on the
//      clipped surrogate (token-level mean over the minibatch), + KL / entropy terms if asked;
//   4. critic: --critic-steps passes, clipped value loss;
//   5. write critic_{k+1} then policy_{k+1} (the loop reads policy_{k+1} as "iteration done"),
//      both with their optimizer state, and a metrics line.
// Same inputs, same world size, CPU: bitwise the same outputs, so a killed iteration re-run
// from step_k files gives exactly what the first run would have.
#pragma once
#include "common/config.h"

namespace ovr::rl {

void add_ppo_options(Config& cfg);
int run_ppo(const Config& cfg);

}  // namespace ovr::rl
