// The generation engine used by rollouts and evaluation: batched decoding over a paged KV cache
// with continuous batching (a finished sequence's slot is refilled from the waiting prompts at
// the next step, so the long tail of long responses does not leave the batch empty), one shared
// prefill per prompt for its n samples, and per-sequence random streams.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/qwen2.h"
#include "engine/sampling.h"

namespace ovr::engine {

struct GenerationRequest {
  int64_t prompt_id = 0;               // seeds the samples' random streams with their index
  std::vector<int64_t> prompt_ids;     // the prompt's tokens (non-empty)
  // Multimodal prompts (vision issue): the prompt's input embeddings [S, hidden] and M-RoPE
  // positions [3, S]. When undefined, embeddings come from prompt_ids and positions are 0..S-1.
  at::Tensor inputs_embeds, positions;
  int n = 1;                           // samples of this prompt
  int64_t max_new_tokens = -1;         // -1: the engine's default
};

struct GeneratedSample {
  int64_t prompt_id = 0;
  int sample_index = 0;
  std::vector<int64_t> tokens;   // generated tokens (the stop token included)
  std::vector<float> logprobs;   // of each token under the distribution it was sampled from
  std::string finish_reason;     // "eos", "stop" (a stop string) or "length"
};

struct EngineOptions {
  int64_t max_batch = 64;            // sequences decoded together
  int64_t block_size = 16;           // tokens per KV block
  int64_t kv_cache_tokens = 1 << 18; // KV budget in tokens, over all sequences
  int64_t max_new_tokens = 256;      // default per request
  uint64_t seed = 0;
  SamplingParams sampling;
  std::vector<int64_t> eos_ids;
  // Tokens never sampled (probability 0): image/video placeholders, which only the chat template
  // may place; a response holding one would not be a valid document for training.
  std::vector<int64_t> suppressed_ids;
  std::vector<std::string> stop_strings;  // need `detokenize`
  std::function<std::string(const std::vector<int64_t>&)> detokenize;
};

struct EngineStats {
  int64_t prefill_tokens = 0, decode_tokens = 0, decode_steps = 0, peak_batch = 0;
  double prefill_seconds = 0, decode_seconds = 0, sampling_seconds = 0;
  int64_t peak_kv_bytes = 0;
  int64_t peak_kv_blocks = 0, kv_budget_blocks = 0;  // blocks in use at the fullest step, of the budget
  int64_t preemptions = 0;  // samples preempted (KV freed, recomputed later) when the pool ran short
  // Mean running sequences per decode step (occupancy of the batch): decode_tokens / decode_steps.
};

class GenerationEngine {
 public:
  GenerationEngine(model::Qwen2ForCausalLM lm, EngineOptions options);

  // Generates every sample of every request; `on_finish` (optional) is called as each sample
  // finishes (rewards can be computed then). Results are ordered by (request, sample index).
  std::vector<GeneratedSample> generate(const std::vector<GenerationRequest>& requests,
                                        const std::function<void(const GeneratedSample&)>& on_finish = {});
  const EngineStats& stats() const { return stats_; }

 private:
  class Run;  // the state of one generate() call (generation.cpp)
  model::Qwen2ForCausalLM lm_;
  EngineOptions opt_;
  at::Tensor suppressed_;  // suppressed_ids as a tensor (undefined when none)
  EngineStats stats_;
};

}  // namespace ovr::engine
