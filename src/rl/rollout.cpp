#include "rl/rollout.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <cstdio>
#include <optional>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mpi_runtime.h"
#include "common/seeded_order.h"
#include "engine/engine_setup.h"
#include "engine/generation.h"
#include "engine/prompt.h"
#include "image/image_processor.h"
#include "io/fs.h"
#include "io/run_lock.h"
#include "io/tensor_store.h"
#include "model/qwen2_5_vl.h"
#include "reward/reward.h"
#include "rl/curriculum.h"
#include "rl/rollout_store.h"

namespace ovr::rl {

void add_rollout_options(Config& cfg) {
  engine::add_engine_options(cfg, /*default_temperature=*/1.0);
  cfg.options().add_options()
      ("policy", po::value<std::string>()->required(), "the policy: an ovr checkpoint (file or directory with latest) or a Hugging Face model")
      ("prompts", po::value<std::string>()->required(), "prompts JSONL: {\"id\", \"prompt\" | \"messages\", \"answer\", [\"image\"]}")
      ("output,o", po::value<std::string>()->required(), "the rollout file to write (e.g. rollouts/iter_000000.h5)")
      ("iteration", po::value<int64_t>()->default_value(0), "RL iteration: picks the prompts, the length limit and the random streams")
      ("prompts-per-iteration", po::value<int64_t>()->default_value(512), "prompts of each iteration (taken in order from seeded epoch shuffles)")
      ("n", po::value<int>()->default_value(16), "responses per prompt")
      ("length-schedule", po::value<std::string>()->default_value("0:24576,300:32768,700:49152"), "max response tokens by iteration (the paper's curriculum)")
      ("max-new-tokens", po::value<int64_t>()->default_value(0), "override the schedule (0: use it)")
      ("prompt-template", po::value<std::string>()->default_value("chat"), "chat (the chat template) or orz (Open-Reasoner-Zero's instruction)")
      ("answer-tag", po::bool_switch()->default_value(false), "the reward reads only the last <answer>...</answer> (use with --prompt-template orz)")
      ("seed", po::value<uint64_t>()->default_value(0), "random seed (prompt order and sampling)")
      ("metrics", po::value<std::string>()->default_value(""), "append the iteration's figures to this JSONL (default: rollout_metrics.jsonl beside --output)");
}

int run_rollout(const Config& cfg) {
  const int rank = world_rank(), ranks = world_size();
  const std::string policy_path = cfg.get<std::string>("policy"), output = cfg.get<std::string>("output");
  const int64_t iteration = cfg.get<int64_t>("iteration"), per_iter = cfg.get<int64_t>("prompts-per-iteration");
  const int n = cfg.get<int>("n");
  const std::string tmpl = cfg.get<std::string>("prompt-template");
  if (iteration < 0) throw ConfigError("--iteration: must be >= 0");
  if (per_iter < 1) throw ConfigError("--prompts-per-iteration: must be at least 1");
  if (n < 1) throw ConfigError("--n: must be at least 1");
  engine::apply_prompt_template(tmpl, "");  // validates the name
  const LengthSchedule schedule = parse_length_schedule(cfg.get<std::string>("length-schedule"));
  const int64_t max_new = cfg.get<int64_t>("max-new-tokens") > 0 ? cfg.get<int64_t>("max-new-tokens") : schedule.at(iteration);
  engine::EngineOptions eo = engine::engine_options(cfg);
  eo.max_new_tokens = max_new;
  eo.seed = mix_seed(cfg.get<uint64_t>("seed"), uint64_t(iteration));

  if (io::is_directory(output)) throw ConfigError("--output " + output + ": is a directory (expected the rollout file to write)");
  const io::RunLock lock(io::parent_dir(output), MPI_COMM_WORLD);  // one run per rollout directory

  // ---- inputs ----
  const std::vector<engine::PromptRow> rows = engine::load_prompts(cfg.get<std::string>("prompts"));
  const text::Tokenizer tok = engine::load_tokenizer(cfg, policy_path);
  engine::Policy policy = engine::load_policy(policy_path, cfg.get<std::string>("device"));
  const image::ImageProcessor processor = engine::load_image_processor(cfg);

  // ---- this rank's prompts: a contiguous share of the iteration's ----
  const std::vector<int64_t> chosen = iteration_rows(int64_t(rows.size()), per_iter, iteration, cfg.get<uint64_t>("seed"));
  const int64_t first = per_iter * rank / ranks, last = per_iter * (rank + 1) / ranks;
  Rollouts out;
  out.iteration = iteration;
  out.policy_step = policy.step;
  out.seed = cfg.get<uint64_t>("seed");
  out.max_new_tokens = max_new;
  out.model_config = policy.model_config;
  out.run_config = cfg.to_json().dump();
  std::vector<engine::GenerationRequest> requests;
  std::vector<bool> has_image;
  for (int64_t k = first; k < last; ++k) {
    const engine::PromptRow& row = rows[size_t(chosen[size_t(k)])];
    RolloutGroup g{row.index, row.id, {}, row.answer, row.images};
    requests.push_back(engine::prepare_request(row, tmpl, tok, policy, processor, n, eo, &g.prompt_tokens));
    has_image.push_back(!row.images.empty());
    out.groups.push_back(std::move(g));
  }

  // ---- generate, scoring each response as it finishes ----
  eo.eos_ids = engine::stop_token_ids(policy, tok);
  eo.suppressed_ids = engine::placeholder_token_ids(policy);
  reward::RewardOptions ro;
  ro.extract.require_answer_tag = cfg.get<bool>("answer-tag");
  std::map<std::pair<int64_t, int>, reward::RewardResult> scores;  // (prompt id, sample) -> reward
  std::map<int64_t, size_t> group_of;
  for (size_t i = 0; i < requests.size(); ++i) group_of[requests[i].prompt_id] = i;
  const double t0 = monotonic_seconds();
  engine::GenerationEngine generator(policy.model.lm, eo);
  const std::vector<engine::GeneratedSample> samples = generator.generate(requests, [&](const engine::GeneratedSample& s) {
    const std::string text = tok.decode(std::vector<int32_t>(s.tokens.begin(), s.tokens.end()), /*skip_special=*/true);
    scores[{s.prompt_id, s.sample_index}] =
        reward::score_response(text, out.groups[group_of[s.prompt_id]].answer, s.finish_reason == "length", ro);
  });
  const engine::EngineStats es = generator.stats();

  // The iteration's figures, summed over ranks.
  double reward_text = 0, samples_text = 0, reward_image = 0, samples_image = 0;
  double groups_all_correct = 0, groups_none_correct = 0, groups = 0, tokens = 0, truncated = 0, samples_all = 0;
  int64_t max_len = 0;
  std::vector<double> group_sum(requests.size(), 0.0);
  for (const engine::GeneratedSample& s : samples) {
    const size_t g = group_of[s.prompt_id];
    const reward::RewardResult& r = scores.at({s.prompt_id, s.sample_index});
    RolloutSample rs{int64_t(g), s.sample_index, int64_t(s.tokens.size()), std::vector<int32_t>(s.tokens.begin(), s.tokens.end()), s.logprobs,
                     float(r.reward), s.finish_reason, r.extracted, r.reason};
    out.samples.push_back(std::move(rs));
    (has_image[g] ? reward_image : reward_text) += r.reward;
    (has_image[g] ? samples_image : samples_text) += 1;
    group_sum[g] += r.reward;
    tokens += double(s.tokens.size());
    truncated += s.finish_reason == "length";
    samples_all += 1;
    max_len = std::max<int64_t>(max_len, int64_t(s.tokens.size()));
  }
  for (double s : group_sum) groups_all_correct += s == n, groups_none_correct += s == 0, groups += 1;
  sum_over_ranks({&reward_text, &samples_text, &reward_image, &samples_image, &groups_all_correct, &groups_none_correct,
                  &groups, &tokens, &truncated, &samples_all});
  OVR_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &max_len, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD));
  write_rollouts(output, MPI_COMM_WORLD, out);
  // Wall time of the whole phase (generation, rewards, bookkeeping, the collective write) against
  // the engine's own prefill + decode time: the cost of everything around the engine.
  double times[2] = {monotonic_seconds() - t0,
                     es.prefill_seconds + es.decode_seconds};
  OVR_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, times, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
  const double slowest = times[0];
  double decode[3] = {double(es.decode_tokens), es.decode_seconds, double(es.preemptions)};
  OVR_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, decode, 3, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));

  const nlohmann::json j = {
      {"iteration", iteration}, {"policy_step", policy.step}, {"max_new_tokens", max_new},
      {"reward", (reward_text + reward_image) / std::max(1.0, samples_text + samples_image)},
      {"reward_text", samples_text > 0 ? nlohmann::json(reward_text / samples_text) : nlohmann::json()},
      {"reward_image", samples_image > 0 ? nlohmann::json(reward_image / samples_image) : nlohmann::json()},
      {"groups_all_correct", groups_all_correct / groups}, {"groups_none_correct", groups_none_correct / groups},
      {"response_length_mean", tokens / samples_all}, {"response_length_max", max_len},
      {"truncated", truncated / samples_all}, {"generated_tokens", int64_t(tokens)}, {"tokens_per_s", tokens / slowest},
      {"seconds", slowest},
      {"engine_seconds", times[1]}, {"engine_decode_tokens_per_s", decode[1] > 0 ? decode[0] / decode[1] * ranks : 0.0},
      {"overhead", 1.0 - times[1] / slowest}, {"engine_preemptions", int64_t(decode[2])},
      {"engine_mean_batch", es.decode_steps > 0 ? double(es.decode_tokens) / double(es.decode_steps) : 0.0},  // rank 0's
      {"engine_peak_kv_blocks", es.peak_kv_blocks}, {"engine_kv_budget_blocks", es.kv_budget_blocks}};
  if (rank == 0) {
    std::string metrics = cfg.get<std::string>("metrics");
    if (metrics.empty()) metrics = io::join_path(io::parent_dir(output), "rollout_metrics.jsonl");
    io::append_line(metrics, j.dump());
  }
  log::info("iteration %lld: reward %.3f (text %s, image %s), groups all/none correct %.2f/%.2f, length mean %.0f max "
            "%lld (limit %lld), truncated %.2f, %.0f tok/s, %lld preemptions -> %s",
            (long long)iteration, j["reward"].get<double>(), j["reward_text"].dump().c_str(), j["reward_image"].dump().c_str(),
            groups_all_correct / groups, groups_none_correct / groups, tokens / samples_all, (long long)max_len,
            (long long)max_new, truncated / samples_all, tokens / slowest, (long long)decode[2], output.c_str());
  return kExitOk;
}

}  // namespace ovr::rl
