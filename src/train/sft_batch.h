// A micro-batch of packed rows as tensors, and the SFT loss on it.
//
// Each row holds whole documents back to back, padded to the micro-batch's longest row. Every
// document restarts its positions at 0 (its own M-RoPE index when it has images) and attends only
// to its own earlier tokens (segment ids -> a block-diagonal causal mask), so a packed row computes
// exactly what the same documents would compute one per row. Targets are next tokens inside the
// same document whose loss mask is 1; everything else is -100 (ignored).
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

#include "image/image_processor.h"
#include "model/qwen2_5_vl.h"
#include "ops/fused_logprob_op.h"
#include "train/sft_data.h"

namespace ovr::train {

constexpr int64_t kIgnoreIndex = -100;

struct SftBatch {
  at::Tensor input_ids;  // [R, S] int64
  at::Tensor positions;  // [3, R, S] int64
  at::Tensor segments;   // [R, S] int64: document index within the row, -1 for padding
  at::Tensor labels;     // [R, S] int64: the target at each position or kIgnoreIndex
  std::vector<SftImage> images;  // in token order (row by row)
  int64_t tokens = 0, targets = 0;
};

// Targets (loss tokens) of one row: what the loss of that row is normalised by, summed.
int64_t count_targets(const SftDataset& data, const PackedRow& row);

SftBatch make_sft_batch(const SftDataset& data, const std::vector<const PackedRow*>& rows, int64_t image_token_id,
                        int64_t spatial_merge_size);

// The final hidden states at the positions that have a target [targets, hidden], in row-major
// order (for a document: its target tokens in order), and the targets [targets]. The vision tower
// runs without gradients unless `train_vision`. The policy's log-probs and the critic's values
// (rl/ppo_trainer) are computed from these too.
struct TargetStates {
  at::Tensor hidden, targets;
};
TargetStates hidden_at_targets(model::Qwen2_5_VL& model, const SftBatch& batch, const image::ImageProcessor* processor,
                               bool train_vision);

// log p(target | prefix) of every target [targets], fp32 (differentiable), and with `with_entropy`
// the entropy of each next-token distribution too (PPO's entropy bonus), through the fused log-prob
// kernel: the [targets, vocab] logits are never formed (ops/fused_logprob_op.h).
ops::TokenLogprobs target_logprobs(model::Qwen2_5_VL& model, const TargetStates& states, bool with_entropy = false);

// Sum over the batch's targets of -log p(target | prefix), fp32, differentiable.
at::Tensor sft_loss_sum(model::Qwen2_5_VL& model, const SftBatch& batch, const image::ImageProcessor* processor,
                        bool train_vision);

}  // namespace ovr::train
