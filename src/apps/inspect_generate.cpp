// ovr_inspect generate: smoke-test any checkpoint in one line: generate from a prompt and print
// the ids, text, log-probabilities and finish reason of each sample as JSON.
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "apps/inspect_commands.h"
#include "common/config.h"
#include "common/error.h"
#include "common/mpi_runtime.h"
#include "io/fs.h"
#include "text/chat_template.h"
#include "image/image_processor.h"
#include "model/qwen2_5_vl.h"
#include "text/tokenizer.h"
#include "model/weights.h"
#include "engine/generation.h"

namespace ovr::apps {

namespace {

std::vector<int64_t> parse_ids(const std::string& text) {
  std::vector<int64_t> ids;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    size_t used = 0;
    int64_t v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v < 0) throw ConfigError("--prompt-ids: '" + item + "' is not a token id");
    ids.push_back(v);
  }
  if (ids.empty()) throw ConfigError("--prompt-ids: no ids given");
  return ids;
}

}  // namespace

int inspect_generate(int argc, char** argv) {
  Config cfg("ovr_inspect generate",
             "ovr_inspect generate --model PATH (--prompt TEXT | --prompt-ids 1,2,3) [--chat] [--max-new-tokens N]\n"
             "                            [--greedy | --temperature T --top-p P --top-k K --seed S] [--n N]",
             "Loads a model (a Hugging Face directory or an ovr HDF5 checkpoint) and generates from one prompt with\n"
             "the engine used by rollouts and evaluation. Prints JSON: the prompt ids and, per sample, the generated\n"
             "ids, their text (with a tokenizer), the log-probability of each token under the distribution it was\n"
             "sampled from, and the finish reason (eos, stop, length). Generation stops at the model's EOS ids and,\n"
             "with a tokenizer, at <|im_end|> and <|endoftext|>.");
  cfg.options().add_options()
      ("model", po::value<std::string>()->required(), "checkpoint: Hugging Face directory, .safetensors, or ovr .h5 file / checkpoint directory")
      ("tokenizer", po::value<std::string>(), "tokenizer.json or its directory (default: the model directory's, if any)")
      ("prompt", po::value<std::string>(), "prompt text (needs a tokenizer)")
      ("prompt-ids", po::value<std::string>(), "prompt token ids, comma-separated")
      ("chat", po::bool_switch()->default_value(false), "wrap --prompt as a user turn of the chat template, with the generation prompt")
      ("max-new-tokens", po::value<int64_t>()->default_value(64), "tokens to generate at most")
      ("greedy", po::bool_switch()->default_value(false), "greedy decoding (ignores temperature, top-p, top-k)")
      ("temperature", po::value<double>()->default_value(1.0), "sampling temperature (> 0)")
      ("top-p", po::value<double>()->default_value(1.0), "nucleus sampling: keep the most probable tokens up to this mass")
      ("top-k", po::value<int64_t>()->default_value(0), "keep at most this many tokens (0: no limit)")
      ("seed", po::value<uint64_t>()->default_value(0), "random seed (samples are seeded by seed, prompt id 0 and sample index)")
      ("n", po::value<int>()->default_value(1), "samples of the prompt (they share its prefill)")
      ("stop", po::value<std::vector<std::string>>()->composing(), "stop string (repeatable; needs a tokenizer)")
      ("image", po::value<std::vector<std::string>>()->composing(), "image file, PNG or JPEG (repeatable; needs --chat): placed before the prompt text in the user turn")
      ("processor-config", po::value<std::string>(), "preprocessor_config.json for --image (default: the model directory's, else Qwen2.5-VL's defaults)")
      ("max-pixels", po::value<int64_t>(), "images: largest resized area in pixels (overrides the processor config)")
      ("device", po::value<std::string>()->default_value("auto"), "cpu, cuda, or auto (cuda when this build's LibTorch sees a GPU)")
      ("dtype", po::value<std::string>()->default_value("auto"), "compute dtype: F32, BF16, or auto (BF16 on cuda, F32 on cpu)")
      ("threads", po::value<int>()->default_value(0), "CPU threads (0: LibTorch's default)");
  if (!cfg.parse(argc, argv)) return kExitOk;
  if (cfg.has("prompt") == cfg.has("prompt-ids")) throw ConfigError("give exactly one of --prompt and --prompt-ids");
  if (cfg.get<int>("threads") > 0) torch::set_num_threads(cfg.get<int>("threads"));
  const std::string model_path = cfg.get<std::string>("model");

  // The tokenizer: explicit, or the model directory's.
  std::unique_ptr<text::Tokenizer> tok;
  std::string tok_path = cfg.has("tokenizer") ? cfg.get<std::string>("tokenizer") : "";
  if (tok_path.empty() && io::is_directory(model_path) && io::path_exists(io::join_path(model_path, "tokenizer.json")))
    tok_path = model_path;
  if (!tok_path.empty()) tok = std::make_unique<text::Tokenizer>(tok_path);
  if ((cfg.has("prompt") || cfg.has("stop")) && !tok) throw ConfigError("--prompt and --stop need a tokenizer (--tokenizer PATH)");

  // Images: processed here, placed before the prompt text of the user turn.
  const auto images = cfg.has("image") ? cfg.get<std::vector<std::string>>("image") : std::vector<std::string>{};
  if (!images.empty() && (!cfg.get<bool>("chat") || !cfg.has("prompt")))
    throw ConfigError("--image needs --chat and a text --prompt (the chat template places the image tokens)");
  at::Tensor pixel_values, grid_thw;
  std::vector<int64_t> pad_counts;
  if (!images.empty()) {
    std::string pp = cfg.has("processor-config") ? cfg.get<std::string>("processor-config") : "";
    if (pp.empty() && io::is_directory(model_path) && io::path_exists(io::join_path(model_path, "preprocessor_config.json")))
      pp = io::join_path(model_path, "preprocessor_config.json");
    image::ImageProcessorOptions po_opts = pp.empty() ? image::ImageProcessorOptions{} : image::ImageProcessorOptions::from_json_file(pp);
    if (cfg.has("max-pixels")) po_opts.max_pixels = cfg.get<int64_t>("max-pixels");
    const image::ImageProcessor processor(po_opts);
    model::ImageInputs in = model::process_images(processor, images);
    pixel_values = in.pixel_values;
    grid_thw = in.grid_thw;
    pad_counts = in.pad_counts;
  }

  std::vector<int64_t> prompt;
  if (cfg.has("prompt-ids")) {
    prompt = parse_ids(cfg.get<std::string>("prompt-ids"));
  } else if (cfg.get<bool>("chat")) {
    text::ChatOptions chat;
    chat.add_generation_prompt = true;
    text::ChatMessage user = text::ChatMessage::text("user", cfg.get<std::string>("prompt"));
    for (size_t i = 0; i < images.size(); ++i) user.content.insert(user.content.begin(), text::ChatItem{text::ChatItem::Type::Image, ""});
    const auto ids = text::apply_chat_template(*tok, {user}, pad_counts, chat).ids;
    prompt.assign(ids.begin(), ids.end());
  } else {
    const auto ids = tok->encode(cfg.get<std::string>("prompt"));
    prompt.assign(ids.begin(), ids.end());
  }

  const std::string dev = cfg.get<std::string>("device"), dt = cfg.get<std::string>("dtype");
  if (dev != "auto" && dev != "cpu" && dev != "cuda") throw ConfigError("--device: expected auto, cpu or cuda, got '" + dev + "'");
  if (dt != "auto" && dt != "F32" && dt != "BF16") throw ConfigError("--dtype: expected auto, F32 or BF16, got '" + dt + "'");
  const bool cuda = dev == "cuda" || (dev == "auto" && torch::cuda::is_available());
  if (cuda && !torch::cuda::is_available()) throw ConfigError("--device cuda: this build's LibTorch sees no CUDA device");
  const at::ScalarType dtype = dt == "BF16" || (dt == "auto" && cuda) ? at::kBFloat16 : at::kFloat;
  const at::Device device = cuda ? at::Device(at::kCUDA) : at::Device(at::kCPU);
  model::Qwen2_5_VL vl;
  if (images.empty()) {
    vl.lm = model::load_qwen2_lm(model_path);
  } else {
    vl = model::load_qwen2_5_vl(model_path);
    if (!vl.visual) throw Error(model_path + ": --image given but the model has no vision tower (no vision_config)");
    vl.visual->to(device, dtype);
  }
  model::Qwen2ForCausalLM lm = vl.lm;
  lm->to(device, dtype);
  for (int64_t id : prompt)
    if (id >= lm->config.vocab_size)
      throw ConfigError("prompt token id " + std::to_string(id) + " is outside the model's vocabulary of " +
                        std::to_string(lm->config.vocab_size));
  engine::EngineOptions o;
  o.max_new_tokens = cfg.get<int64_t>("max-new-tokens");
  o.seed = cfg.get<uint64_t>("seed");
  o.sampling.greedy = cfg.get<bool>("greedy");
  o.sampling.temperature = cfg.get<double>("temperature");
  o.sampling.top_p = cfg.get<double>("top-p");
  o.sampling.top_k = cfg.get<int64_t>("top-k");
  try {
    engine::validate(o.sampling);
  } catch (const Error& e) {
    throw ConfigError(e.what());
  }
  if (o.max_new_tokens < 1) throw ConfigError("--max-new-tokens must be at least 1");
  if (cfg.get<int>("n") < 1) throw ConfigError("--n must be at least 1");
  if (lm->config.eos_token_id >= 0) o.eos_ids.push_back(lm->config.eos_token_id);
  if (tok) {
    for (int64_t id : {int64_t(tok->eos_id()), int64_t(tok->pad_id())})
      if (std::find(o.eos_ids.begin(), o.eos_ids.end(), id) == o.eos_ids.end() && id < lm->config.vocab_size) o.eos_ids.push_back(id);
    o.detokenize = [&](const std::vector<int64_t>& ids) { return tok->decode(std::vector<int32_t>(ids.begin(), ids.end())); };
    if (cfg.has("stop")) o.stop_strings = cfg.get<std::vector<std::string>>("stop");
  }
  engine::GenerationRequest req;
  req.prompt_ids = prompt;
  if (!images.empty()) {  // the prompt enters as embeddings: vision features in the image slots
    torch::NoGradGuard no_grad;
    const auto in = vl.inputs(prompt, pixel_values, grid_thw);
    req.inputs_embeds = in.embeds;
    req.positions = in.positions;
  }
  req.n = cfg.get<int>("n");
  engine::GenerationEngine generator(lm, o);
  const auto samples = generator.generate({req});

  nlohmann::json out = {{"model", model_path}, {"prompt_ids", prompt}};
  if (tok) out["prompt_text"] = tok->decode(std::vector<int32_t>(prompt.begin(), prompt.end()));
  out["samples"] = nlohmann::json::array();
  for (const auto& s : samples) {
    nlohmann::json j = {{"ids", s.tokens}, {"logprobs", s.logprobs}, {"finish_reason", s.finish_reason}};
    if (tok) j["text"] = tok->decode(std::vector<int32_t>(s.tokens.begin(), s.tokens.end()));
    out["samples"].push_back(j);
  }
  const auto& st = generator.stats();
  out["stats"] = {{"device", cuda ? "cuda" : "cpu"}, {"dtype", dtype == at::kBFloat16 ? "BF16" : "F32"},
                  {"prefill_tokens", st.prefill_tokens}, {"decode_tokens", st.decode_tokens},
                  {"seconds", st.prefill_seconds + st.decode_seconds}};
  if (world_rank() == 0) std::printf("%s\n", out.dump(1).c_str());
  return kExitOk;
}

}  // namespace ovr::apps
