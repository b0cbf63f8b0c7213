// The rollout file of one RL iteration (format: docs/rollout-format.md): what ovr_rollout
// generated and ovr_ppo trains on, as one HDF5 file in the checkpoint container (role
// "rollouts": atomic commit, CRC-32 per dataset, collective write by all ranks).
//
// Ragged data (token lists, strings) is stored flat with a per-row length dataset:
//   /rollout/prompt_tokens (I32) + /rollout/prompt_lengths (I64, one per group), and so on.
// A group is one prompt and its n samples; rank r writes its groups and their samples as one
// contiguous range of every dataset, so the file is the same whatever the number of ranks.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ovr::rl {

struct RolloutGroup {
  int64_t dataset_index = 0;          // row of the prompts file
  std::string id;                     // the row's "id" (or its row number)
  std::vector<int32_t> prompt_tokens; // as generated from (image pads included)
  std::string answer;                 // the reference answer
  std::vector<std::string> images;    // image files, in prompt order
};

struct RolloutSample {
  int64_t group = 0;                  // index into the file's groups
  int32_t sample_index = 0;           // 0..n-1 within the group
  int64_t length = 0;                 // response tokens (set also where tokens were not read)
  std::vector<int32_t> tokens;        // the response (its stop token included)
  std::vector<float> logprobs;        // behaviour log-probs, one per token
  float reward = 0;
  std::string finish_reason;          // eos | stop | length
  std::string extracted;              // the answer the reward read ("" if none)
  std::string reward_reason;          // correct | wrong | no_answer | truncated | too_long
};

struct Rollouts {
  int64_t iteration = 0, policy_step = 0, max_new_tokens = 0;
  uint64_t seed = 0;
  std::string model_config = "{}", run_config = "{}";
  std::vector<RolloutGroup> groups;
  std::vector<RolloutSample> samples;
};

// Collective over comm. Each rank passes its own groups and samples (sample.group indexing its
// own groups); ranks' groups follow each other in rank order in the file.
void write_rollouts(const std::string& path, MPI_Comm comm, const Rollouts& mine);
// The whole file on the calling process, every dataset's CRC checked.
Rollouts read_rollouts(const std::string& path);

// Sharded reading for ovr_ppo, where the responses are nearly all the bytes (8192 samples x 10k
// tokens x 8 bytes at the paper's scale) and each rank trains on its own samples:
// read_rollout_index reads everything but the responses' tokens and log-probs (each sample's
// `length` is set) on the calling process, every dataset it reads checked; then, collectively,
// read_rollout_responses fills tokens and log-probs of the samples this rank lists. The ranks'
// lists must partition all samples: together they read each byte once, and the CRC of the whole
// dataset, combined from every rank's pieces, is checked on every rank. Returns the bytes this
// rank read.
Rollouts read_rollout_index(const std::string& path);
uint64_t read_rollout_responses(const std::string& path, MPI_Comm comm, const std::vector<int64_t>& samples, Rollouts* ro);

}  // namespace ovr::rl
