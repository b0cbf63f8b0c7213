// The PPO update of one iteration as named steps; rl/ppo_trainer.cpp runs them in order:
//   build_ppo_batch -> score_rollouts -> estimate_advantages -> update_policy -> update_critic.
//
// Every sample becomes a document prompt + response whose targets are its response tokens
// (train/sft_batch); documents are packed into rows of --seq-len tokens, and a packed row computes
// exactly what its documents would compute one per row (block-diagonal mask, per-document
// positions). Losses are token sums divided by the response tokens of the whole minibatch on all
// ranks (rl/ppo.h), so neither packing nor the number of ranks changes what a token weighs.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "dist/zero_optimizer.h"
#include "image/image_processor.h"
#include "model/qwen2_5_vl.h"
#include "rl/ppo_options.h"
#include "rl/rollout_store.h"
#include "train/sft_data.h"

namespace ovr::rl {

struct PpoBatch {
  train::SftDataset data;                           // one document per sample (empty where not this rank's)
  std::vector<int64_t> response_tokens;             // per sample
  std::vector<std::vector<train::PackedRow>> rows;  // per minibatch, this rank's rows
  std::vector<int64_t> minibatch_tokens;            // per minibatch, response tokens on all ranks: the loss divisor
  std::vector<int64_t> micro_batches;               // per minibatch, the busiest rank's row count (all ranks step together)
  int64_t total_tokens = 0;
};

// Samples split into `minibatches` by a shuffle seeded with (seed, iteration); rank r takes a
// contiguous share of each minibatch's rows. Planned from the samples' lengths alone (an index of
// the rollout file: read_rollout_index), so that each rank then reads only its own samples
// (ppo_samples, read_rollout_responses) and fill_ppo_documents builds their documents. Throws
// ovr::Error when the rollouts hold no tokens.
PpoBatch plan_ppo_batch(const Rollouts& index, int minibatches, int64_t seq_len, uint64_t seed, int rank, int ranks);
std::vector<int64_t> ppo_samples(const PpoBatch& b);  // this rank's samples, increasing
void fill_ppo_documents(PpoBatch& b, const Rollouts& ro, const image::ImageProcessor& processor);
// All three on rollouts held whole.
PpoBatch build_ppo_batch(const Rollouts& ro, const image::ImageProcessor& processor, int minibatches, int64_t seq_len,
                         uint64_t seed, int rank, int ranks);

// The networks of one update. critic/value_head are absent without a critic (grpo, rloo);
// reference only with a KL penalty.
struct PpoModels {
  model::Qwen2_5_VL* policy = nullptr;
  model::Qwen2_5_VL* critic = nullptr;
  at::Tensor value_head;  // [1, hidden], the critic's head (no bias)
  model::Qwen2_5_VL* reference = nullptr;
  const image::ImageProcessor* processor = nullptr;
};

// Per sample, tensors over its response tokens.
struct SampleState {
  at::Tensor old_logp, old_value, advantage, ret, ref_logp;
};

// The critic's value of every target position of a batch's rows [targets].
at::Tensor row_values(PpoModels& m, const PpoBatch& b, const train::PackedRow& row);

// 1. Log-probs of the policy as it is (the "old" policy; the behaviour log-probs from generation
// only measure the train/inference mismatch), the reference's, and the critic's values, for the
// samples of this rank's rows. Returns the mismatch to the behaviour log-probs, over all ranks.
struct ScoreStats {
  double mismatch_abs = 0, mismatch_mean = 0;  // mean |logp - behaviour|, mean (behaviour - logp)
};
ScoreStats score_rollouts(PpoModels& m, const PpoBatch& b, const Rollouts& ro, std::vector<SampleState>* st);

// 2. Advantages (and, for gae, the critic's returns) of this rank's samples.
//   gae: reward on the last response token, GAE(gamma, lambda), whitened over all ranks.
//   grpo / rloo: rl/advantage.h from every sample's reward, the same on every token.
struct AdvantageStats {
  double mean = 0, std = 0;          // over all response tokens, before whitening
  double explained_variance = 0;     // gae only: 1 - Var(R - V) / Var(R)
};
AdvantageStats estimate_advantages(const PpoOptions& o, const PpoBatch& b, const Rollouts& ro,
                                   std::vector<SampleState>* st);

// The losses of one packed row, divided by its minibatch's response tokens: what backward() runs on.
struct RowPolicyLoss {
  at::Tensor loss;  // differentiable
  double loss_sum = 0, clipped = 0, approx_kl = 0, tokens = 0, kl = 0, entropy = 0;
};
RowPolicyLoss row_policy_loss(PpoModels& m, const PpoOptions& o, const PpoBatch& b, const train::PackedRow& row,
                              const std::vector<SampleState>& st, int64_t minibatch_tokens);
struct RowValueLoss {
  at::Tensor loss;  // differentiable
  double loss_sum = 0, clipped = 0, tokens = 0;
};
RowValueLoss row_value_loss(PpoModels& m, const PpoOptions& o, const PpoBatch& b, const train::PackedRow& row,
                            const std::vector<SampleState>& st, int64_t minibatch_tokens);

// 3. --policy-steps passes over the minibatches, one AdamW (ZeRO) step each. Figures over all ranks.
struct PolicyStats {
  double loss = 0, clip_fraction = 0, approx_kl = 0, kl = 0, entropy = 0, grad_norm = 0;
};
PolicyStats update_policy(PpoModels& m, dist::ZeroAdamW& opt, const PpoOptions& o, const PpoBatch& b,
                          const std::vector<SampleState>& st);

// 4. --critic-steps passes of the clipped value loss (gae only).
struct CriticStats {
  double loss = 0, clip_fraction = 0, grad_norm = 0;
};
CriticStats update_critic(PpoModels& m, dist::ZeroAdamW& opt, const PpoOptions& o, const PpoBatch& b,
                          const std::vector<SampleState>& st);

}  // namespace ovr::rl
