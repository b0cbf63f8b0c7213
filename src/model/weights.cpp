#include "model/weights.h"

#include <torch/torch.h>

#include <map>

#include "common/error.h"
#include "io/fs.h"
#include "io/shared_model_source.h"
#include "io/torch_bridge.h"

namespace ovr::model {

namespace {
bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
}  // namespace

std::string published_name(const std::string& name) {
  if (starts_with(name, "model.language_model.")) return "model." + name.substr(21);
  if (starts_with(name, "model.visual.")) return name.substr(6);
  return name;
}

void load_parameters(torch::nn::Module& module, io::ModelSource& src, const std::vector<std::string>& ignore_prefixes,
                     const std::string& prefix) {
  std::map<std::string, const io::TensorInfo*> stored;  // published name -> stored tensor
  for (const auto& t : src.tensors()) stored[published_name(t.name)] = &t;
  torch::NoGradGuard no_grad;
  std::map<std::string, bool> used;
  for (auto& item : module.named_parameters(/*recurse=*/true)) {
    const std::string name = prefix + item.key();
    at::Tensor& param = item.value();
    auto it = stored.find(name);
    if (it == stored.end()) throw Error(src.origin() + ": missing tensor '" + name + "'");
    const io::TensorInfo& info = *it->second;
    if (info.shape != param.sizes().vec())
      throw Error(src.origin() + ": tensor '" + info.name + "' has shape " + io::shape_string(info.shape) +
                  ", the model expects " + io::shape_string(param.sizes().vec()));
    param.copy_(io::read_tensor(src, info.name).to(param.scalar_type()));
    used[name] = true;
  }
  for (const auto& [name, info] : stored) {
    if (used.count(name) || !starts_with(name, prefix)) continue;
    bool ignored = false;
    for (const auto& p : ignore_prefixes) ignored |= starts_with(name, p);
    // A tied lm_head may still be stored by some writers; it is the embedding, unused here.
    if (!ignored && name != "lm_head.weight")
      throw Error(src.origin() + ": tensor '" + info->name + "' matches no parameter of the model");
  }
}

void save_parameters(torch::nn::Module& module, const std::string& path, const std::string& config_json,
                     const io::CheckpointAttrs& attrs) {
  std::vector<io::TensorInfo> infos;
  std::vector<at::Tensor> values;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    values.push_back(item.value().detach().contiguous());
    infos.push_back(io::tensor_info(published_name(item.key()), values.back()));
  }
  io::SinkOptions o;
  o.model_config = config_json;
  o.metadata = {{"format", "pt"}};
  o.attrs = attrs;
  o.overwrite = true;
  auto sink = io::create_model_sink(path, io::detect_output_format(path), infos, o, MPI_COMM_SELF);
  for (size_t i = 0; i < infos.size(); ++i) sink->write_rows(infos[i].name, 0, io::dataset_rows(infos[i]), values[i].data_ptr());
  sink->commit();
}

std::string model_config_text(const std::string& path, io::ModelSource& src, std::string* origin) {
  std::string text = src.model_config(), from = src.origin() + " (model_config)";
  if (text.empty() || text == "{}") {  // a bare .safetensors file: its directory's config.json
    from = io::join_path(io::parent_dir(path), "config.json");
    if (!io::path_exists(from)) throw Error(path + ": no model config (no config.json beside it)");
    text = io::read_text_file(from);
  }
  if (origin) *origin = from;
  return text;
}

Qwen2ForCausalLM load_qwen2_lm(const std::string& path, MPI_Comm comm) {
  auto src = io::open_model_source_shared(path, comm);
  std::string config_origin;
  const std::string config_text = model_config_text(path, *src, &config_origin);
  const auto json = nlohmann::json::parse(config_text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) throw Error(config_origin + ": not valid JSON");
  Qwen2ForCausalLM lm(parse_qwen2_config(json, config_origin));
  load_parameters(*lm, *src, {"visual.", "value_head."});  // a critic's value head is the critic's
  lm->eval();
  return lm;
}

}  // namespace ovr::model
