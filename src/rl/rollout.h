// ovr_rollout: one RL iteration's sampling. Each rank takes a contiguous share of the
// iteration's prompts (engine/prompt.h), samples n responses per prompt with the generation engine
// (per-sequence random streams seeded by (seed, iteration, prompt, sample), so the samples do not
// depend on the number of ranks), scores each response as it finishes (reward/reward.h), and all
// ranks write one rollout file together (rl/rollout_store.h). Rank 0 reports the iteration:
// mean reward (text and image prompts apart), the share of groups all / none correct, response
// lengths, truncation rate and generated tokens/s, also appended to a metrics JSONL.
#pragma once
#include "common/config.h"

namespace ovr::rl {

void add_rollout_options(Config& cfg);
int run_rollout(const Config& cfg);

}  // namespace ovr::rl
