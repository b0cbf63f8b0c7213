#include "model/qwen2_config.h"

#include <numeric>

#include "common/error.h"
#include "io/fs.h"

namespace ovr::model {

namespace {

int64_t positive(const nlohmann::json& j, const char* name, const std::string& origin) {
  if (!j.contains(name)) throw Error(origin + ": missing field '" + name + "'");
  if (!j[name].is_number_integer() || j[name].get<int64_t>() <= 0)
    throw Error(origin + ": field '" + name + "' must be a positive integer");
  return j[name].get<int64_t>();
}

int64_t token_id(const nlohmann::json& top, const nlohmann::json& text, const char* name) {
  for (const auto* j : {&top, &text}) {
    if (!j->contains(name)) continue;
    const auto& v = (*j)[name];
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_array() && !v.empty() && v[0].is_number_integer()) return v[0].get<int64_t>();  // eos may be a list
  }
  return -1;
}

}  // namespace

Qwen2Config parse_qwen2_config(const nlohmann::json& top, const std::string& origin) {
  if (!top.is_object()) throw Error(origin + ": not a JSON object");
  Qwen2Config c;
  c.model_type = top.value("model_type", "");
  if (c.model_type != "qwen2_5_vl" && c.model_type != "qwen2")
    throw Error(origin + ": model_type '" + c.model_type + "' is not supported (expected qwen2_5_vl or qwen2)");
  const bool nested = top.contains("text_config") && top["text_config"].is_object();
  const nlohmann::json& t = nested ? top["text_config"] : top;
  c.vocab_size = positive(t, "vocab_size", origin);
  c.hidden_size = positive(t, "hidden_size", origin);
  c.intermediate_size = positive(t, "intermediate_size", origin);
  c.num_hidden_layers = positive(t, "num_hidden_layers", origin);
  c.num_attention_heads = positive(t, "num_attention_heads", origin);
  c.num_key_value_heads = t.contains("num_key_value_heads") ? positive(t, "num_key_value_heads", origin) : c.num_attention_heads;
  if (c.hidden_size % c.num_attention_heads != 0)
    throw Error(origin + ": hidden_size is not divisible by num_attention_heads");
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    throw Error(origin + ": num_attention_heads is not divisible by num_key_value_heads");
  c.head_dim = c.hidden_size / c.num_attention_heads;
  if (c.head_dim % 2 != 0) throw Error(origin + ": head dimension must be even for rotary embeddings");
  c.rms_norm_eps = t.value("rms_norm_eps", 1e-6);
  c.max_position_embeddings = t.value("max_position_embeddings", int64_t(32768));
  c.tie_word_embeddings = top.value("tie_word_embeddings", t.value("tie_word_embeddings", false));

  // Rotary parameters: "rope_scaling" (published configs) or "rope_parameters" (transformers 5),
  // rope_theta beside them or inside rope_parameters.
  c.rope_theta = t.value("rope_theta", 1000000.0);
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    if (!t.contains(key) || !t[key].is_object()) continue;
    const auto& r = t[key];
    if (r.contains("rope_theta")) c.rope_theta = r["rope_theta"].get<double>();
    if (r.contains("mrope_section")) c.mrope_section = r["mrope_section"].get<std::vector<int64_t>>();
    const std::string type = r.value("rope_type", r.value("type", "default"));
    if (type != "default" && type != "mrope")
      throw Error(origin + ": " + key + " type '" + type + "' is not supported (default or mrope)");
  }
  if (c.model_type == "qwen2_5_vl" && c.mrope_section.empty())
    throw Error(origin + ": qwen2_5_vl config without mrope_section (in rope_scaling or rope_parameters)");
  if (!c.mrope_section.empty()) {
    if (c.mrope_section.size() != 3) throw Error(origin + ": mrope_section must have 3 entries");
    const int64_t sum = std::accumulate(c.mrope_section.begin(), c.mrope_section.end(), int64_t(0));
    if (sum != c.head_dim / 2)
      throw Error(origin + ": mrope_section sums to " + std::to_string(sum) + ", expected head_dim / 2 = " +
                  std::to_string(c.head_dim / 2));
  }
  c.eos_token_id = token_id(top, t, "eos_token_id");
  c.pad_token_id = token_id(top, t, "pad_token_id");
  c.image_token_id = token_id(top, t, "image_token_id");
  c.vision_start_token_id = token_id(top, t, "vision_start_token_id");
  return c;
}

Qwen2Config load_qwen2_config(const std::string& path) {
  const auto j = nlohmann::json::parse(io::read_text_file(path), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw Error(path + ": not valid JSON");
  return parse_qwen2_config(j, path);
}

}  // namespace ovr::model
