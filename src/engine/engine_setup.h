// What rollouts and evaluation share around the generation engine: the sampling options, the
// device, the policy loaded onto it, and one prompt row turned into a generation request (chat
// template with image pads; for image prompts the vision tower's embeddings and M-RoPE positions).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/config.h"
#include "image/image_processor.h"
#include "model/qwen2_5_vl.h"
#include "text/tokenizer.h"
#include "engine/generation.h"
#include "engine/prompt.h"

namespace ovr::engine {

// --tokenizer, --preprocessor and --device: what every tool that runs a model on text and images
// takes (load_tokenizer, load_image_processor, load_policy read them).
void add_model_input_options(Config& cfg);
// --device's value checked (ConfigError naming it; "cuda" without a CUDA device).
void check_device_option(const std::string& device);
// The above, and --temperature/--top-p/--top-k, --max-batch, --kv-cache-tokens.
void add_engine_options(Config& cfg, double default_temperature);
// Sampling and batching from those options (ConfigError on bad values); temperature 0 = greedy.
EngineOptions engine_options(const Config& cfg);

// A loaded policy on its device: CUDA (bf16) when asked or available, one device per rank.
struct Policy {
  model::Qwen2_5_VL model;
  at::Device device{at::kCPU};
  at::ScalarType dtype = at::kFloat;
  int64_t step = 0;          // the checkpoint's step (0 for a Hugging Face model)
  std::string model_config;  // JSON, for output files
};
Policy load_policy(const std::string& path, const std::string& device_option);

// --tokenizer, or the policy directory's tokenizer.json (ConfigError when neither exists).
text::Tokenizer load_tokenizer(const Config& cfg, const std::string& policy_path);
image::ImageProcessor load_image_processor(const Config& cfg);

// The stop tokens: the model's eos and the tokenizer's eos/pad, where they exist.
std::vector<int64_t> stop_token_ids(const Policy& policy, const text::Tokenizer& tok);
// Tokens a response must never hold: the image placeholder (<|image_pad|>, the model's image_token_id).
std::vector<int64_t> placeholder_token_ids(const Policy& policy);

// One prompt row as a request (prompt_id = row.index, n samples); its prompt tokens go to
// `prompt_tokens_out`. Throws ovr::Error naming row.source on an unreadable image, a token
// outside the vocabulary, an image prompt for a model without a vision tower, or a prompt that
// with eo.max_new_tokens does not fit the model's context or n samples the KV budget (checked
// before the vision tower or any prefill runs).
GenerationRequest prepare_request(const PromptRow& row, const std::string& template_name, const text::Tokenizer& tok,
                                  Policy& policy, const image::ImageProcessor& processor, int n, const EngineOptions& eo,
                                  std::vector<int32_t>* prompt_tokens_out);

}  // namespace ovr::engine
