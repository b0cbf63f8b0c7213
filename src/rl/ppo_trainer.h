// ovr_ppo: the policy update of one RL iteration, PPO with the estimator --advantage picks
// (gae: the paper's, Open-Reasoner-Zero's recipe with a critic; grpo, rloo: no critic).
//
//   load policy_k, critic_k (gae; at the first iteration the policy's backbone + a new value
//   head) and rollouts_k; then the steps of rl/ppo_steps.h:
//   build_ppo_batch      every sample a document prompt + response whose targets are the response
//                        tokens, packed into rows; samples split into minibatches by a seeded
//                        shuffle; rank r takes a contiguous share of each minibatch's rows;
//   score_rollouts       with the current weights and no gradients: the "old" log-probs (the
//                        behaviour log-probs from generation only measure the train/inference
//                        mismatch), the reference's, and the critic's values;
//   estimate_advantages  gae: reward on the last response token, GAE(gamma, lambda) (default 1, 1:
//                        A = R - V), batch whitening over all ranks; grpo / rloo: rl/advantage.h;
//   update_policy        --policy-steps passes over the minibatches, each an AdamW (ZeRO) step on
//                        the clipped surrogate (token-level mean over the minibatch), + KL / entropy;
//   update_critic        (gae) --critic-steps passes of the clipped value loss;
//   then critic_{k+1} and policy_{k+1} (the loop reads policy_{k+1} as "iteration done"), both
//   with their optimizer state, and a metrics line.
// Same inputs, same world size, CPU: bitwise the same outputs, so a killed iteration re-run from
// step_k files gives exactly what the first run would have.
#pragma once
#include "common/config.h"
#include "rl/ppo_options.h"

namespace ovr::rl {

int run_ppo(const Config& cfg);

}  // namespace ovr::rl
