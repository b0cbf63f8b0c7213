#include "model/qwen2_5_vl_params.h"

#include "common/error.h"
#include "model/qwen2_config.h"
#include "model/vision_config.h"

namespace ovr::model {

std::vector<ParamSpec> qwen2_5_vl_parameters(const nlohmann::json& config, io::DType dt, const std::string& origin) {
  // The same parsing the model uses, so that the manifest and the model cannot disagree.
  const Qwen2Config c = parse_qwen2_config(config, origin);
  std::vector<ParamSpec> p;
  auto add = [&](std::string name, std::vector<int64_t> shape, Init init) {
    p.push_back({io::TensorInfo{std::move(name), dt, std::move(shape)}, init});
  };
  // Vision tower first, as the published checkpoints list it.
  if (config.contains("vision_config")) {
    const VisionConfig v = parse_vision_config(config, origin);
    const int64_t d = v.hidden_size, vi = v.intermediate_size, md = d * v.spatial_merge_size * v.spatial_merge_size;
    if (v.out_hidden_size != c.hidden_size)
      throw Error(origin + " vision_config: out_hidden_size " + std::to_string(v.out_hidden_size) +
                  " != hidden_size " + std::to_string(c.hidden_size));
    add("visual.patch_embed.proj.weight", {d, v.in_channels, v.temporal_patch_size, v.patch_size, v.patch_size}, Init::Normal);
    for (int64_t i = 0; i < v.depth; ++i) {
      const std::string b = "visual.blocks." + std::to_string(i) + ".";
      add(b + "norm1.weight", {d}, Init::Ones);
      add(b + "norm2.weight", {d}, Init::Ones);
      add(b + "attn.qkv.weight", {3 * d, d}, Init::Normal);
      add(b + "attn.qkv.bias", {3 * d}, Init::Zeros);
      add(b + "attn.proj.weight", {d, d}, Init::Normal);
      add(b + "attn.proj.bias", {d}, Init::Zeros);
      add(b + "mlp.gate_proj.weight", {vi, d}, Init::Normal);
      add(b + "mlp.gate_proj.bias", {vi}, Init::Zeros);
      add(b + "mlp.up_proj.weight", {vi, d}, Init::Normal);
      add(b + "mlp.up_proj.bias", {vi}, Init::Zeros);
      add(b + "mlp.down_proj.weight", {d, vi}, Init::Normal);
      add(b + "mlp.down_proj.bias", {d}, Init::Zeros);
    }
    add("visual.merger.ln_q.weight", {d}, Init::Ones);
    add("visual.merger.mlp.0.weight", {md, md}, Init::Normal);
    add("visual.merger.mlp.0.bias", {md}, Init::Zeros);
    add("visual.merger.mlp.2.weight", {v.out_hidden_size, md}, Init::Normal);
    add("visual.merger.mlp.2.bias", {v.out_hidden_size}, Init::Zeros);
  }
  const int64_t h = c.hidden_size, q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim;
  add("model.embed_tokens.weight", {c.vocab_size, h}, Init::Normal);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string b = "model.layers." + std::to_string(i) + ".";
    add(b + "input_layernorm.weight", {h}, Init::Ones);
    add(b + "self_attn.q_proj.weight", {q, h}, Init::Normal);
    add(b + "self_attn.q_proj.bias", {q}, Init::Zeros);
    add(b + "self_attn.k_proj.weight", {kv, h}, Init::Normal);
    add(b + "self_attn.k_proj.bias", {kv}, Init::Zeros);
    add(b + "self_attn.v_proj.weight", {kv, h}, Init::Normal);
    add(b + "self_attn.v_proj.bias", {kv}, Init::Zeros);
    add(b + "self_attn.o_proj.weight", {h, q}, Init::Normal);
    add(b + "post_attention_layernorm.weight", {h}, Init::Ones);
    add(b + "mlp.gate_proj.weight", {c.intermediate_size, h}, Init::Normal);
    add(b + "mlp.up_proj.weight", {c.intermediate_size, h}, Init::Normal);
    add(b + "mlp.down_proj.weight", {h, c.intermediate_size}, Init::Normal);
  }
  add("model.norm.weight", {h}, Init::Ones);
  if (!c.tie_word_embeddings) add("lm_head.weight", {c.vocab_size, h}, Init::Normal);
  return p;
}

}  // namespace ovr::model
