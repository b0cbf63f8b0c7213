// ovr_sft: supervised fine-tuning (the paper's language-only cold start) of a Qwen2.5-VL
// checkpoint on JSONL conversations, data-parallel over MPI ranks with a ZeRO-1/2 AdamW.
//
//   for each step (global batch = micro-batch x accumulation x ranks packed rows):
//     rank r takes its contiguous share of the step's rows; for each micro-batch:
//       loss = sum of target NLLs / targets of the whole global batch;  backward;  [ZeRO-2: reduce]
//     ZeRO step (reduce-scatter, clip the global norm, AdamW on the rank's slice, all-gather)
//     rank 0 logs; every --save-every steps, at the end and on SIGTERM/SIGUSR1: checkpoint
//
// Because the loss is normalised by the global number of targets and the rows of a step do not
// depend on the world size, any number of ranks computes the same update. A checkpoint holds the
// model, the optimizer state (flat, any world size can read it) and the data cursor; a run whose
// --output already has `latest` resumes from it.
#pragma once
#include "common/config.h"

namespace ovr::train {

void add_sft_options(Config& cfg);
int run_sft(const Config& cfg);  // an exit status (kExitRequeue after a stop signal)

}  // namespace ovr::train
