#include "model/vision_config.h"

#include "common/error.h"

namespace ovr::model {

VisionConfig parse_vision_config(const nlohmann::json& top, const std::string& origin) {
  VisionConfig c;
  if (!top.contains("vision_config")) return c;
  const auto& v = top["vision_config"];
  const std::string where = origin + " vision_config";
  auto field = [&](const char* name, int64_t& out) {
    if (!v.contains(name)) return;
    if (!v[name].is_number_integer() || v[name].get<int64_t>() <= 0)
      throw Error(where + ": field '" + name + "' must be a positive integer");
    out = v[name].get<int64_t>();
  };
  field("depth", c.depth);
  field("hidden_size", c.hidden_size);
  field("intermediate_size", c.intermediate_size);
  field("num_heads", c.num_heads);
  field("out_hidden_size", c.out_hidden_size);
  field("patch_size", c.patch_size);
  field("spatial_merge_size", c.spatial_merge_size);
  field("temporal_patch_size", c.temporal_patch_size);
  field("in_chans", c.in_channels);
  field("in_channels", c.in_channels);
  field("window_size", c.window_size);
  if (v.contains("fullatt_block_indexes")) c.fullatt_block_indexes = v["fullatt_block_indexes"].get<std::vector<int64_t>>();
  if (v.contains("hidden_act") && v["hidden_act"] != "silu")
    throw Error(where + ": hidden_act '" + v["hidden_act"].get<std::string>() + "' is not supported (silu)");
  if (c.hidden_size % c.num_heads != 0 || c.head_dim() % 4 != 0)
    throw Error(where + ": hidden_size / num_heads must be a multiple of 4 (2-D rotary)");
  if (c.window_size % (c.spatial_merge_size * c.patch_size) != 0)
    throw Error(where + ": window_size must be a multiple of spatial_merge_size * patch_size");
  return c;
}

}  // namespace ovr::model
