// The language model's hyper-parameters, read from a Hugging Face config.json: the text fields
// of Qwen2_5_VLConfig in the flat layout (published checkpoints) or nested under "text_config"
// (newer transformers), and plain Qwen2 (Qwen2ForCausalLM) configs.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ovr::model {

struct Qwen2Config {
  std::string model_type;  // qwen2_5_vl or qwen2
  int64_t vocab_size = 0, hidden_size = 0, intermediate_size = 0, num_hidden_layers = 0;
  int64_t num_attention_heads = 0, num_key_value_heads = 0, head_dim = 0;
  double rms_norm_eps = 1e-6, rope_theta = 1e6;
  // M-RoPE: how the rotary half-dimensions are split between the temporal, height and width
  // position axes (sums to head_dim / 2). Empty for plain Qwen2: one position axis.
  std::vector<int64_t> mrope_section;
  bool tie_word_embeddings = false;
  int64_t max_position_embeddings = 32768;
  // Special token ids (-1 when the config does not give them).
  int64_t eos_token_id = -1, pad_token_id = -1, image_token_id = -1, vision_start_token_id = -1;
};

// Throws ovr::Error("<origin>: ...") naming a missing or invalid field or an unknown architecture.
Qwen2Config parse_qwen2_config(const nlohmann::json& config, const std::string& origin);
Qwen2Config load_qwen2_config(const std::string& config_json_path);

}  // namespace ovr::model
