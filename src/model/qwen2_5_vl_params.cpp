#include "model/qwen2_5_vl_params.h"

#include "common/error.h"

namespace ovr::model {

namespace {

int64_t field(const nlohmann::json& j, const char* name, const std::string& where) {
  if (!j.contains(name)) throw Error(where + ": missing field '" + name + "'");
  if (!j[name].is_number_integer() || j[name].get<int64_t>() <= 0)
    throw Error(where + ": field '" + name + "' must be a positive integer");
  return j[name].get<int64_t>();
}

int64_t field_or(const nlohmann::json& j, const char* name, int64_t fallback, const std::string& where) {
  return j.contains(name) ? field(j, name, where) : fallback;
}

}  // namespace

std::vector<ParamSpec> qwen2_5_vl_parameters(const nlohmann::json& config, io::DType dt) {
  if (!config.is_object()) throw Error("config.json: not a JSON object");
  // Newer transformers nest the text fields under "text_config".
  const nlohmann::json& text = config.contains("text_config") && config["text_config"].is_object() ? config["text_config"] : config;
  const std::string where = "config.json";
  const int64_t h = field(text, "hidden_size", where), layers = field(text, "num_hidden_layers", where);
  const int64_t heads = field(text, "num_attention_heads", where);
  const int64_t kv = field_or(text, "num_key_value_heads", heads, where);
  const int64_t inter = field(text, "intermediate_size", where), vocab = field(text, "vocab_size", where);
  if (h % heads != 0) throw Error(where + ": hidden_size " + std::to_string(h) + " is not divisible by num_attention_heads");
  if (heads % kv != 0) throw Error(where + ": num_attention_heads is not divisible by num_key_value_heads");
  const int64_t hd = h / heads;
  const bool tied = config.value("tie_word_embeddings", text.value("tie_word_embeddings", false));

  std::vector<ParamSpec> p;
  auto add = [&](std::string name, std::vector<int64_t> shape, Init init) {
    p.push_back({io::TensorInfo{std::move(name), dt, std::move(shape)}, init});
  };

  // Vision tower first, as the published checkpoints list it.
  if (config.contains("vision_config")) {
    const auto& v = config["vision_config"];
    const std::string vw = "config.json vision_config";
    const int64_t d = field_or(v, "hidden_size", 1280, vw), depth = field_or(v, "depth", 32, vw);
    const int64_t vi = field_or(v, "intermediate_size", 3420, vw), out = field_or(v, "out_hidden_size", 3584, vw);
    const int64_t patch = field_or(v, "patch_size", 14, vw), tp = field_or(v, "temporal_patch_size", 2, vw);
    const int64_t ch = field_or(v, "in_chans", field_or(v, "in_channels", 3, vw), vw);
    const int64_t merge = field_or(v, "spatial_merge_size", 2, vw);
    const int64_t md = d * merge * merge;
    add("visual.patch_embed.proj.weight", {d, ch, tp, patch, patch}, Init::Normal);
    for (int64_t i = 0; i < depth; ++i) {
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
    add("visual.merger.mlp.2.weight", {out, md}, Init::Normal);
    add("visual.merger.mlp.2.bias", {out}, Init::Zeros);
    if (out != h) throw Error(vw + ": out_hidden_size " + std::to_string(out) + " != hidden_size " + std::to_string(h));
  }

  add("model.embed_tokens.weight", {vocab, h}, Init::Normal);
  for (int64_t i = 0; i < layers; ++i) {
    const std::string b = "model.layers." + std::to_string(i) + ".";
    add(b + "input_layernorm.weight", {h}, Init::Ones);
    add(b + "self_attn.q_proj.weight", {heads * hd, h}, Init::Normal);
    add(b + "self_attn.q_proj.bias", {heads * hd}, Init::Zeros);
    add(b + "self_attn.k_proj.weight", {kv * hd, h}, Init::Normal);
    add(b + "self_attn.k_proj.bias", {kv * hd}, Init::Zeros);
    add(b + "self_attn.v_proj.weight", {kv * hd, h}, Init::Normal);
    add(b + "self_attn.v_proj.bias", {kv * hd}, Init::Zeros);
    add(b + "self_attn.o_proj.weight", {h, heads * hd}, Init::Normal);
    add(b + "post_attention_layernorm.weight", {h}, Init::Ones);
    add(b + "mlp.gate_proj.weight", {inter, h}, Init::Normal);
    add(b + "mlp.up_proj.weight", {inter, h}, Init::Normal);
    add(b + "mlp.down_proj.weight", {h, inter}, Init::Normal);
  }
  add("model.norm.weight", {h}, Init::Ones);
  if (!tied) add("lm_head.weight", {vocab, h}, Init::Normal);
  return p;
}

}  // namespace ovr::model
