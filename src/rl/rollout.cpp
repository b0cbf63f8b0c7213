#include "rl/rollout.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <optional>

#include "common/error.h"
#include "common/log.h"
#include "common/mpi_runtime.h"
#include "io/fs.h"
#include "io/tensor_store.h"
#include "model/image_processor.h"
#include "model/qwen2_5_vl.h"
#include "rl/generation.h"
#include "rl/prompts.h"
#include "rl/reward.h"
#include "rl/rollout_store.h"

namespace ovr::rl {

void add_rollout_options(Config& cfg) {
  cfg.options().add_options()
      ("policy", po::value<std::string>()->required(), "the policy: an ovr checkpoint (file or directory with latest) or a Hugging Face model")
      ("prompts", po::value<std::string>()->required(), "prompts JSONL: {\"id\", \"prompt\" | \"messages\", \"answer\", [\"image\"]}")
      ("output,o", po::value<std::string>()->required(), "the rollout file to write (e.g. rollouts/iter_000000.h5)")
      ("tokenizer", po::value<std::string>()->default_value(""), "tokenizer.json or its directory (default: the --policy directory)")
      ("preprocessor", po::value<std::string>()->default_value(""), "preprocessor_config.json for image prompts (default: Qwen2.5-VL's)")
      ("iteration", po::value<int64_t>()->default_value(0), "RL iteration: picks the prompts, the length limit and the random streams")
      ("prompts-per-iteration", po::value<int64_t>()->default_value(512), "prompts of each iteration (taken in order from seeded epoch shuffles)")
      ("n", po::value<int>()->default_value(16), "responses per prompt")
      ("temperature", po::value<double>()->default_value(1.0), "sampling temperature")
      ("top-p", po::value<double>()->default_value(1.0), "nucleus sampling")
      ("top-k", po::value<int64_t>()->default_value(0), "top-k sampling (0: off)")
      ("length-schedule", po::value<std::string>()->default_value("0:24576,300:32768,700:49152"), "max response tokens by iteration (the paper's curriculum)")
      ("max-new-tokens", po::value<int64_t>()->default_value(0), "override the schedule (0: use it)")
      ("prompt-template", po::value<std::string>()->default_value("chat"), "chat (the chat template) or orz (Open-Reasoner-Zero's instruction)")
      ("answer-tag", po::bool_switch()->default_value(false), "the reward reads only the last <answer>...</answer> (use with --prompt-template orz)")
      ("seed", po::value<uint64_t>()->default_value(0), "random seed (prompt order and sampling)")
      ("max-batch", po::value<int64_t>()->default_value(64), "sequences decoded together per rank")
      ("kv-cache-tokens", po::value<int64_t>()->default_value(1 << 20), "KV cache budget per rank, in tokens")
      ("device", po::value<std::string>()->default_value("auto"), "cpu, cuda or auto")
      ("metrics", po::value<std::string>()->default_value(""), "append the iteration's figures to this JSONL (default: rollout_metrics.jsonl beside --output)");
}

namespace {

uint64_t mix(uint64_t a, uint64_t b) {  // one SplitMix64 step of a ^ b: stream seeds per iteration
  uint64_t z = (a ^ (b * 0x9E3779B97F4A7C15ull)) + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

int run_rollout(const Config& cfg) {
  const int rank = world_rank(), ranks = world_size();
  const std::string policy = cfg.get<std::string>("policy"), output = cfg.get<std::string>("output");
  const int64_t iteration = cfg.get<int64_t>("iteration"), per_iter = cfg.get<int64_t>("prompts-per-iteration");
  const int n = cfg.get<int>("n");
  const std::string tmpl = cfg.get<std::string>("prompt-template");
  if (iteration < 0) throw ConfigError("--iteration: must be >= 0");
  if (per_iter < 1) throw ConfigError("--prompts-per-iteration: must be at least 1");
  if (n < 1) throw ConfigError("--n: must be at least 1");
  apply_prompt_template(tmpl, "");  // validates the name
  const LengthSchedule schedule = parse_length_schedule(cfg.get<std::string>("length-schedule"));
  const int64_t max_new = cfg.get<int64_t>("max-new-tokens") > 0 ? cfg.get<int64_t>("max-new-tokens") : schedule.at(iteration);
  EngineOptions eo;
  eo.sampling.temperature = cfg.get<double>("temperature");
  eo.sampling.top_p = cfg.get<double>("top-p");
  eo.sampling.top_k = cfg.get<int64_t>("top-k");
  try {
    validate(eo.sampling);
  } catch (const Error& e) {
    throw ConfigError(e.what());
  }
  eo.max_new_tokens = max_new;
  eo.max_batch = cfg.get<int64_t>("max-batch");
  eo.kv_cache_tokens = cfg.get<int64_t>("kv-cache-tokens");
  eo.seed = mix(cfg.get<uint64_t>("seed"), uint64_t(iteration));
  if (eo.max_batch < 1 || eo.kv_cache_tokens < 1) throw ConfigError("--max-batch and --kv-cache-tokens: must be positive");
  const std::string dev = cfg.get<std::string>("device");
  if (dev != "auto" && dev != "cpu" && dev != "cuda") throw ConfigError("--device: expected cpu, cuda or auto, got '" + dev + "'");
  const bool cuda = dev == "cuda" || (dev == "auto" && torch::cuda::is_available());
  if (cuda && !torch::cuda::is_available()) throw ConfigError("--device cuda: no CUDA device");
  const at::Device device = cuda ? at::Device(at::kCUDA, rank % int(torch::cuda::device_count())) : at::Device(at::kCPU);
  const at::ScalarType dtype = cuda ? at::kBFloat16 : at::kFloat;

  // ---- inputs ----
  const std::vector<PromptRow> rows = load_prompts(cfg.get<std::string>("prompts"));
  std::string tok_path = cfg.get<std::string>("tokenizer");
  if (tok_path.empty()) {
    if (!io::path_exists(io::join_path(policy, "tokenizer.json")))
      throw ConfigError("--tokenizer: required (" + policy + " is not a directory holding tokenizer.json)");
    tok_path = policy;
  }
  const model::Tokenizer tok(tok_path);
  model::Qwen2_5_VL m = model::load_qwen2_5_vl(policy);
  const std::string model_config = io::open_model_source(policy)->model_config();
  int64_t policy_step = 0;
  if (policy.size() > 3 && policy.substr(policy.size() - 3) == ".h5") policy_step = io::CheckpointReader(policy).attrs().step;
  else if (io::path_exists(io::join_path(policy, "latest"))) policy_step = io::CheckpointReader(policy).attrs().step;
  m.lm->to(device, dtype);
  m.lm->eval();
  if (m.visual) m.visual->to(device, dtype);
  std::optional<model::ImageProcessor> processor;
  const std::string pre = cfg.get<std::string>("preprocessor");
  processor.emplace(pre.empty() ? model::ImageProcessorOptions{} : model::ImageProcessorOptions::from_json_file(pre));

  // ---- this rank's prompts: a contiguous share of the iteration's ----
  const std::vector<int64_t> chosen = iteration_rows(int64_t(rows.size()), per_iter, iteration, cfg.get<uint64_t>("seed"));
  const int64_t first = per_iter * rank / ranks, last = per_iter * (rank + 1) / ranks;
  Rollouts out;
  out.iteration = iteration;
  out.policy_step = policy_step;
  out.seed = cfg.get<uint64_t>("seed");
  out.max_new_tokens = max_new;
  out.model_config = model_config;
  out.run_config = cfg.to_json().dump();
  std::vector<GenerationRequest> requests;
  std::vector<bool> has_image;
  for (int64_t k = first; k < last; ++k) {
    const PromptRow& row = rows[size_t(chosen[size_t(k)])];
    RolloutGroup g{row.index, row.id, {}, row.answer, row.images};
    GenerationRequest req;
    if (!row.images.empty() && !m.visual) throw Error(row.source + ": an image prompt, but " + policy + " has no vision tower");
    const model::ImageInputs images = model::process_images(*processor, row.images);
    g.prompt_tokens = prompt_tokens(tok, row, tmpl, images.pad_counts);
    req.prompt_ids.assign(g.prompt_tokens.begin(), g.prompt_tokens.end());
    for (int64_t id : req.prompt_ids)
      if (id >= m.lm->config.vocab_size) throw Error(row.source + ": token id " + std::to_string(id) + " is outside the model's vocabulary");
    if (!row.images.empty()) {
      torch::NoGradGuard no_grad;
      const auto in = m.inputs(req.prompt_ids, images.pixel_values.to(dtype), images.grid_thw);
      req.inputs_embeds = in.embeds;
      req.positions = in.positions;
    }
    req.prompt_id = row.index;
    req.n = n;
    requests.push_back(std::move(req));
    has_image.push_back(!row.images.empty());
    out.groups.push_back(std::move(g));
  }

  // ---- generate, scoring each response as it finishes ----
  for (int64_t id : {m.lm->config.eos_token_id, int64_t(tok.eos_id()), int64_t(tok.pad_id())})
    if (id >= 0 && id < m.lm->config.vocab_size && std::find(eo.eos_ids.begin(), eo.eos_ids.end(), id) == eo.eos_ids.end())
      eo.eos_ids.push_back(id);
  RewardOptions ro;
  ro.extract.require_answer_tag = cfg.get<bool>("answer-tag");
  std::map<std::pair<int64_t, int>, RewardResult> scores;  // (prompt id, sample) -> reward
  std::map<int64_t, size_t> group_of;
  for (size_t i = 0; i < requests.size(); ++i) group_of[requests[i].prompt_id] = i;
  const auto t0 = std::chrono::steady_clock::now();
  GenerationEngine engine(m.lm, eo);
  const std::vector<GeneratedSample> samples = engine.generate(requests, [&](const GeneratedSample& s) {
    const std::string text = tok.decode(std::vector<int32_t>(s.tokens.begin(), s.tokens.end()), /*skip_special=*/true);
    scores[{s.prompt_id, s.sample_index}] =
        score_response(text, out.groups[group_of[s.prompt_id]].answer, s.finish_reason == "length", ro);
  });
  const EngineStats es = engine.stats();

  // figures: [reward text, count text, reward image, count image, all-correct groups, none-correct
  // groups, groups, tokens, truncated, samples]; max length
  double f[10] = {0};
  int64_t max_len = 0;
  std::vector<double> group_sum(requests.size(), 0.0);
  for (const GeneratedSample& s : samples) {
    const size_t g = group_of[s.prompt_id];
    const RewardResult& r = scores.at({s.prompt_id, s.sample_index});
    RolloutSample rs{int64_t(g), s.sample_index, std::vector<int32_t>(s.tokens.begin(), s.tokens.end()), s.logprobs,
                     float(r.reward), s.finish_reason, r.extracted, r.reason};
    out.samples.push_back(std::move(rs));
    f[has_image[g] ? 2 : 0] += r.reward;
    f[has_image[g] ? 3 : 1] += 1;
    group_sum[g] += r.reward;
    f[7] += double(s.tokens.size());
    f[8] += s.finish_reason == "length";
    f[9] += 1;
    max_len = std::max<int64_t>(max_len, int64_t(s.tokens.size()));
  }
  for (double s : group_sum) f[4] += s == n, f[5] += s == 0, f[6] += 1;
  OVR_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, f, 10, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
  OVR_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &max_len, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD));
  write_rollouts(output, MPI_COMM_WORLD, out);
  // Wall time of the whole phase (generation, rewards, bookkeeping, the collective write) against
  // the engine's own prefill + decode time: the cost of everything around the engine.
  double times[2] = {std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                     es.prefill_seconds + es.decode_seconds};
  OVR_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, times, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
  const double slowest = times[0];
  double decode[2] = {double(es.decode_tokens), es.decode_seconds};
  OVR_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, decode, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));

  const nlohmann::json j = {
      {"iteration", iteration}, {"policy_step", policy_step}, {"max_new_tokens", max_new},
      {"reward", (f[0] + f[2]) / std::max(1.0, f[1] + f[3])},
      {"reward_text", f[1] > 0 ? nlohmann::json(f[0] / f[1]) : nlohmann::json()},
      {"reward_image", f[3] > 0 ? nlohmann::json(f[2] / f[3]) : nlohmann::json()},
      {"groups_all_correct", f[4] / f[6]}, {"groups_none_correct", f[5] / f[6]},
      {"response_length_mean", f[7] / f[9]}, {"response_length_max", max_len}, {"truncated", f[8] / f[9]},
      {"generated_tokens", int64_t(f[7])}, {"tokens_per_s", f[7] / slowest}, {"seconds", slowest},
      {"engine_seconds", times[1]}, {"engine_decode_tokens_per_s", decode[1] > 0 ? decode[0] / decode[1] * ranks : 0.0},
      {"overhead", 1.0 - times[1] / slowest}};
  if (rank == 0) {
    std::string metrics = cfg.get<std::string>("metrics");
    if (metrics.empty()) metrics = io::join_path(io::parent_dir(output), "rollout_metrics.jsonl");
    io::append_line(metrics, j.dump());
  }
  log::info("iteration %lld: reward %.3f (text %s, image %s), groups all/none correct %.2f/%.2f, length mean %.0f max "
            "%lld (limit %lld), truncated %.2f, %.0f tok/s -> %s",
            (long long)iteration, j["reward"].get<double>(), j["reward_text"].dump().c_str(), j["reward_image"].dump().c_str(),
            f[4] / f[6], f[5] / f[6], f[7] / f[9], (long long)max_len, (long long)max_new, f[8] / f[9], f[7] / slowest,
            output.c_str());
  return kExitOk;
}

}  // namespace ovr::rl
