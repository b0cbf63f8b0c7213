// The vision tower's hyper-parameters, read from the "vision_config" of a Qwen2.5-VL config.json.
// Plain C++ (no LibTorch), shared by the model and the parameter manifest.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ovr::model {

struct VisionConfig {
  int64_t depth = 32, hidden_size = 1280, intermediate_size = 3420, num_heads = 16, out_hidden_size = 3584;
  int64_t patch_size = 14, spatial_merge_size = 2, temporal_patch_size = 2, in_channels = 3, window_size = 112;
  std::vector<int64_t> fullatt_block_indexes = {7, 15, 23, 31};
  double rms_norm_eps = 1e-6;
  int64_t head_dim() const { return hidden_size / num_heads; }
};

// The "vision_config" of a Qwen2.5-VL config.json; fields the file omits keep the reference
// defaults above (the official 7B config omits several). ovr::Error names a bad field.
VisionConfig parse_vision_config(const nlohmann::json& config, const std::string& origin);

}  // namespace ovr::model
