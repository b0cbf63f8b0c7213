#include "engine/engine_setup.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "common/mpi_runtime.h"
#include "engine/paged_kv_cache.h"
#include "io/fs.h"
#include "io/tensor_store.h"

namespace ovr::engine {

void add_model_input_options(Config& cfg) {
  cfg.options().add_options()
      ("tokenizer", po::value<std::string>()->default_value(""), "tokenizer.json or its directory (default: the model directory)")
      ("preprocessor", po::value<std::string>()->default_value(""), "preprocessor_config.json for image prompts (default: Qwen2.5-VL's)")
      ("device", po::value<std::string>()->default_value("auto"), "cpu, cuda or auto");
}

void check_device_option(const std::string& dev) {
  if (dev != "auto" && dev != "cpu" && dev != "cuda") throw ConfigError("--device: expected cpu, cuda or auto, got '" + dev + "'");
  if (dev == "cuda" && !torch::cuda::is_available()) throw ConfigError("--device cuda: no CUDA device");
}

void add_engine_options(Config& cfg, double default_temperature) {
  add_model_input_options(cfg);
  cfg.options().add_options()
      ("temperature", po::value<double>()->default_value(default_temperature), "sampling temperature (0: greedy)")
      ("top-p", po::value<double>()->default_value(1.0), "nucleus sampling")
      ("top-k", po::value<int64_t>()->default_value(0), "top-k sampling (0: off)")
      ("max-batch", po::value<int64_t>()->default_value(64), "sequences decoded together per rank")
      ("kv-cache-tokens", po::value<int64_t>()->default_value(1 << 20), "KV cache budget per rank, in tokens: sequences are admitted by what they hold; when it runs short the newest are preempted and recomputed later (same tokens)");
}

EngineOptions engine_options(const Config& cfg) {
  EngineOptions eo;
  const double t = cfg.get<double>("temperature");
  if (!(t >= 0) || !std::isfinite(t)) throw ConfigError("--temperature: must be a finite number >= 0 (0: greedy)");
  eo.sampling.greedy = t == 0.0;
  eo.sampling.temperature = t == 0.0 ? 1.0 : t;
  eo.sampling.top_p = cfg.get<double>("top-p");
  eo.sampling.top_k = cfg.get<int64_t>("top-k");
  if (!(eo.sampling.top_p > 0 && eo.sampling.top_p <= 1)) throw ConfigError("--top-p: must be in (0, 1]");
  if (eo.sampling.top_k < 0) throw ConfigError("--top-k: must be >= 0 (0: off)");
  eo.max_batch = cfg.get<int64_t>("max-batch");
  eo.kv_cache_tokens = cfg.get<int64_t>("kv-cache-tokens");
  if (eo.max_batch < 1 || eo.kv_cache_tokens < 1) throw ConfigError("--max-batch and --kv-cache-tokens: must be positive");
  check_device_option(cfg.get<std::string>("device"));
  return eo;
}

Policy load_policy(const std::string& path, const std::string& device_option) {
  const bool cuda = device_option == "cuda" || (device_option == "auto" && torch::cuda::is_available());
  Policy p{model::load_qwen2_5_vl(path, MPI_COMM_WORLD), at::Device(at::kCPU), at::kFloat, 0, ""};
  p.device = cuda ? at::Device(at::kCUDA, world_rank() % int(torch::cuda::device_count())) : at::Device(at::kCPU);
  p.dtype = cuda ? at::kBFloat16 : at::kFloat;
  p.model_config = io::open_model_source(path)->model_config();
  if (io::is_ovr_checkpoint(path)) p.step = io::CheckpointReader(path).attrs().step;
  p.model.lm->to(p.device, p.dtype);
  p.model.lm->eval();
  if (p.model.visual) p.model.visual->to(p.device, p.dtype);
  return p;
}

text::Tokenizer load_tokenizer(const Config& cfg, const std::string& policy_path) {
  std::string path = cfg.get<std::string>("tokenizer");
  if (path.empty()) {
    if (!io::path_exists(io::join_path(policy_path, "tokenizer.json")))
      throw ConfigError("--tokenizer: required (" + policy_path + " is not a directory holding tokenizer.json)");
    path = policy_path;
  }
  return text::Tokenizer(path);
}

image::ImageProcessor load_image_processor(const Config& cfg) {
  const std::string pre = cfg.get<std::string>("preprocessor");
  return image::ImageProcessor(pre.empty() ? image::ImageProcessorOptions{} : image::ImageProcessorOptions::from_json_file(pre));
}

std::vector<int64_t> stop_token_ids(const Policy& policy, const text::Tokenizer& tok) {
  std::vector<int64_t> ids;
  const int64_t vocab = policy.model.lm->config.vocab_size;
  for (int64_t id : {policy.model.lm->config.eos_token_id, int64_t(tok.eos_id()), int64_t(tok.pad_id())})
    if (id >= 0 && id < vocab && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  return ids;
}

std::vector<int64_t> placeholder_token_ids(const Policy& policy) {
  const auto& c = policy.model.lm->config;
  if (c.image_token_id >= 0 && c.image_token_id < c.vocab_size) return {c.image_token_id};
  return {};
}

void check_fits(const PromptRow& row, int64_t prompt_len, int n, const EngineOptions& eo, int64_t context) {
  const int64_t max_new = eo.max_new_tokens, bs = eo.block_size;
  if (prompt_len + max_new > context)
    throw Error(row.source + ": the prompt's " + std::to_string(prompt_len) + " tokens + " + std::to_string(max_new) +
                " new tokens exceed the model's context of " + std::to_string(context) + " (max_position_embeddings)");
  const int64_t need = PagedKVCache::min_request_blocks(prompt_len, max_new, n, bs) * bs;  // as the engine admits it
  if (need > eo.kv_cache_tokens)
    throw Error(row.source + ": the prompt's " + std::to_string(prompt_len) + " tokens with " + std::to_string(n) +
                " samples of up to " + std::to_string(max_new) + " new tokens need " + std::to_string(need) +
                " KV-cache tokens, more than --kv-cache-tokens " + std::to_string(eo.kv_cache_tokens));
}

GenerationRequest prepare_request(const PromptRow& row, const std::string& template_name, const text::Tokenizer& tok,
                                  Policy& policy, const image::ImageProcessor& processor, int n, const EngineOptions& eo,
                                  std::vector<int32_t>* prompt_tokens_out) {
  model::Qwen2_5_VL& m = policy.model;
  if (!row.images.empty() && !m.visual) throw Error(row.source + ": an image prompt, but the model has no vision tower");
  model::ImageInputs images;
  try {
    images = model::process_images(processor, row.images);
  } catch (const Error& e) {
    throw Error(row.source + ": " + e.what());
  }
  const std::vector<int32_t> tokens = prompt_tokens(tok, row, template_name, images.pad_counts);
  check_fits(row, int64_t(tokens.size()), n, eo, m.lm->config.max_position_embeddings);  // before the vision tower runs
  GenerationRequest req;
  req.prompt_ids.assign(tokens.begin(), tokens.end());
  for (int64_t id : req.prompt_ids)
    if (id >= m.lm->config.vocab_size) throw Error(row.source + ": token id " + std::to_string(id) + " is outside the model's vocabulary");
  if (!row.images.empty()) {
    torch::NoGradGuard no_grad;
    const auto in = m.inputs(req.prompt_ids, images.pixel_values.to(policy.device, policy.dtype), images.grid_thw);
    req.inputs_embeds = in.embeds;
    req.positions = in.positions;
  }
  req.prompt_id = row.index;
  req.n = n;
  if (prompt_tokens_out) *prompt_tokens_out = tokens;
  return req;
}

}  // namespace ovr::engine
