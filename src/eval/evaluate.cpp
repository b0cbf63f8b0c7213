#include "eval/evaluate.h"

#include <torch/torch.h>


#include "common/clock.h"
#include "common/error.h"
#include "common/gather.h"
#include "common/log.h"
#include "common/mpi_runtime.h"
#include "eval/benchmark.h"
#include "eval/rescore.h"
#include "eval/scores.h"
#include "io/concatenated_file.h"
#include "io/fs.h"
#include "io/run_lock.h"
#include "engine/engine_setup.h"
#include "reward/reward.h"

namespace ovr::eval {

void add_eval_options(Config& cfg) {
  engine::add_engine_options(cfg, /*default_temperature=*/0.0);
  cfg.options().add_options()
      ("model", po::value<std::string>()->default_value(""), "the model: an ovr checkpoint (file or directory with latest) or a Hugging Face model")
      ("benchmark", po::value<std::string>()->default_value(""), "the benchmark's name in the results (math500, mathvision, aime*, amc* also pick --format)")
      ("data", po::value<std::string>()->default_value(""), "the benchmark file (JSONL; image paths relative to it)")
      ("output,o", po::value<std::string>()->default_value(""), "directory for results.jsonl and summary.json (with --rescore: default the evaluation's own)")
      ("rescore", po::value<std::string>()->default_value(""),
       "DIR or DIR/results.jsonl of a finished evaluation: score its saved responses again with today's rules (no model)")
      ("min-digits", po::value<int>()->default_value(4), "significant digits a decimal needs to stand for a non-terminating exact answer")
      ("decimal-places", po::value<int>()->default_value(-1), "a stated precision: numbers rounded to this many decimals before comparing (-1: none)")
      ("format", po::value<std::string>()->default_value("auto"), "math500, mathvision, aime, amc, mmmu_pro, mathvista, mathverse, dynamath or generic (auto: from --benchmark, e.g. aime24 -> aime, mathvista_testmini -> mathvista; else generic)")
      ("fields", po::value<std::string>()->default_value(""), "generic form: field names, e.g. question=problem,answer=final,image=img")
      ("instruction", po::value<std::string>()->default_value("auto"), "text after the question: auto (step by step, answer in \\boxed{}), none, or the text")
      ("k", po::value<int>()->default_value(1), "samples per problem (avg@k, pass@k, maj@k)")
      ("max-new-tokens", po::value<int64_t>()->default_value(4096), "response length limit (a truncated response scores 0)")
      ("prompt-template", po::value<std::string>()->default_value("chat"), "chat or orz (engine/prompt.h)")
      ("answer-tag", po::bool_switch()->default_value(false), "read only the last <answer>...</answer> (with --prompt-template orz)")
      ("seed", po::value<uint64_t>()->default_value(0), "sampling seed")
      ("limit", po::value<int64_t>()->default_value(0), "evaluate only the first N usable problems (0: all)");
}

namespace {

// The prompt as text, each image's run of <|image_pad|> shown once as <image>.
std::string prompt_text(const text::Tokenizer& tok, const std::vector<int32_t>& ids) {
  std::vector<int32_t> kept;
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] != tok.image_pad_id()) {
      kept.push_back(ids[i]);
      continue;
    }
    if (i > 0 && ids[i - 1] == tok.image_pad_id()) continue;
    out += tok.decode(kept) + "<image>";
    kept.clear();
  }
  return out + tok.decode(kept);
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t a = 0;
  for (size_t b; (b = text.find('\n', a)) != std::string::npos; a = b + 1) lines.push_back(text.substr(a, b - a));
  return lines;
}

reward::RewardOptions reward_options(const Config& cfg) {
  reward::RewardOptions ro;
  ro.extract.require_answer_tag = cfg.get<bool>("answer-tag");
  ro.equiv.min_significant_digits = cfg.get<int>("min-digits");
  ro.equiv.decimal_places = cfg.get<int>("decimal-places");
  if (ro.equiv.min_significant_digits < 1 || ro.equiv.min_significant_digits > 17) throw ConfigError("--min-digits: must be in 1..17");
  if (ro.equiv.decimal_places < -1 || ro.equiv.decimal_places > 15) throw ConfigError("--decimal-places: must be in -1..15");
  return ro;
}

}  // namespace

int run_eval(const Config& cfg) {
  const double t0 = monotonic_seconds();
  const int rank = world_rank(), ranks = world_size();
  const reward::RewardOptions ro = reward_options(cfg);
  if (!cfg.get<std::string>("rescore").empty()) {  // no model: rank 0 rescores saved responses
    if (rank == 0) rescore(cfg.get<std::string>("rescore"), cfg.get<std::string>("output"), ro);
    return kExitOk;
  }
  for (const char* required : {"model", "benchmark", "data", "output"})
    if (cfg.get<std::string>(required).empty()) throw ConfigError(std::string("--") + required + ": required (or --rescore DIR)");
  const std::string model_path = cfg.get<std::string>("model"), name = cfg.get<std::string>("benchmark");
  const std::string data = cfg.get<std::string>("data"), output = cfg.get<std::string>("output");
  const std::string tmpl = cfg.get<std::string>("prompt-template");
  const int k = cfg.get<int>("k");
  if (k < 1) throw ConfigError("--k: must be at least 1");
  if (cfg.get<int64_t>("max-new-tokens") < 1) throw ConfigError("--max-new-tokens: must be at least 1");
  if (cfg.get<int64_t>("limit") < 0) throw ConfigError("--limit: must be >= 0");
  engine::apply_prompt_template(tmpl, "");  // validates the name
  std::string format = cfg.get<std::string>("format");
  if (format == "auto") format = format_for_benchmark(name);
  engine::EngineOptions eo = engine::engine_options(cfg);
  eo.max_new_tokens = cfg.get<int64_t>("max-new-tokens");
  eo.seed = cfg.get<uint64_t>("seed");

  const io::RunLock lock(output, MPI_COMM_WORLD);  // one evaluation per output directory
  Benchmark bench = load_benchmark(data, format, parse_field_map(cfg.get<std::string>("fields")), cfg.get<std::string>("instruction"));
  if (cfg.get<int64_t>("limit") > 0 && int64_t(bench.problems.size()) > cfg.get<int64_t>("limit"))
    bench.problems.resize(size_t(cfg.get<int64_t>("limit")));
  if (bench.problems.empty()) throw Error(data + ": no usable problems (" + std::to_string(bench.bad_rows.size()) + " bad rows)");
  const text::Tokenizer tok = engine::load_tokenizer(cfg, model_path);
  engine::Policy policy = engine::load_policy(model_path, cfg.get<std::string>("device"));
  const image::ImageProcessor processor = engine::load_image_processor(cfg);
  eo.eos_ids = engine::stop_token_ids(policy, tok);
  eo.suppressed_ids = engine::placeholder_token_ids(policy);

  // ---- this rank's problems; one whose image cannot be read becomes a bad row ----
  const size_t P = bench.problems.size();
  const size_t first = P * size_t(rank) / size_t(ranks), last = P * size_t(rank + 1) / size_t(ranks);
  std::vector<engine::GenerationRequest> requests;
  std::map<int64_t, const Problem*> by_line;
  std::map<int64_t, std::string> prompts;
  std::string bad_lines;
  for (size_t i = first; i < last; ++i) {
    const Problem& p = bench.problems[i];
    try {
      std::vector<int32_t> tokens;
      requests.push_back(engine::prepare_request(p.prompt, tmpl, tok, policy, processor, k, eo, &tokens));
      by_line[p.line] = &p;
      prompts[p.line] = prompt_text(tok, tokens);
    } catch (const Error& e) {
      bad_lines += nlohmann::json({{"row", p.line}, {"reason", e.what()}}).dump() + "\n";
    }
  }

  // ---- generate and score ----
  engine::GenerationEngine generator(policy.model.lm, eo);
  const std::vector<engine::GeneratedSample> samples = generator.generate(requests);
  std::string lines, records;  // this rank's results lines, and their summary_fields
  int64_t tokens = 0;
  for (const engine::GeneratedSample& s : samples) {
    const Problem& p = *by_line.at(s.prompt_id);
    const std::string text = tok.decode(std::vector<int32_t>(s.tokens.begin(), s.tokens.end()), /*skip_special=*/true);
    const bool truncated = s.finish_reason == "length";
    const reward::RewardResult r = score_problem(text, p, truncated, ro);
    tokens += int64_t(s.tokens.size());
    nlohmann::json line = nlohmann::json({{"benchmark", name}, {"id", p.prompt.id}, {"row", p.line}, {"sample", s.sample_index},
                             {"subject", p.subject ? nlohmann::json(*p.subject) : nlohmann::json()},
                             {"level", p.level ? nlohmann::json(*p.level) : nlohmann::json()},
                             {"has_image", !p.prompt.images.empty()}, {"prompt", prompts.at(p.line)}, {"response", text},
                             {"response_tokens", s.tokens.size()}, {"finish_reason", s.finish_reason},
                             {"extracted", r.extracted}, {"answer", p.prompt.answer}, {"score", r.reward},
                             {"reason", r.reason}});
    lines += line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    records += summary_fields(line).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }

  // ---- rank 0: results in file order, the summary ----
  // Each rank writes its results into the file at its offset (no rank holds them all: several GB
  // at k = 64 and 32k tokens) and sends rank 0 only what the summary needs.
  const std::string all_records = gather_to_root(MPI_COMM_WORLD, records), all_bad = gather_to_root(MPI_COMM_WORLD, bad_lines);
  OVR_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &tokens, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD));
  // Every row failed (e.g. no image decodes): an error on every rank, not avg@k 0 over 0 problems.
  int64_t evaluated = lines.empty() ? 0 : 1;
  OVR_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &evaluated, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD));
  if (evaluated == 0) {
    std::string first;  // rank 0 holds every rank's bad rows
    if (!all_bad.empty()) first = nlohmann::json::parse(all_bad.substr(0, all_bad.find('\n')))["reason"].get<std::string>();
    throw Error(data + ": no problem could be evaluated: all " + std::to_string(bench.problems.size()) + " rows failed" +
                (first.empty() ? "" : " (the first: " + first + ")"));
  }
  io::write_concatenated(io::join_path(output, "results.jsonl"), MPI_COMM_WORLD, lines);
  const double seconds = monotonic_seconds() - t0;
  if (rank == 0) {
    std::vector<nlohmann::json> results;
    for (const std::string& l : split_lines(all_records)) results.push_back(nlohmann::json::parse(l));
    nlohmann::json summary = {{"model", model_path}, {"model_step", policy.step}, {"benchmark", name}, {"data", data},
                              {"format", format}, {"fields", cfg.get<std::string>("fields")},
                              {"instruction", cfg.get<std::string>("instruction")}, {"answer_tag", ro.extract.require_answer_tag},
                              {"min_significant_digits", ro.equiv.min_significant_digits},
                              {"decimal_places", ro.equiv.decimal_places}, {"k", k}, {"temperature", cfg.get<double>("temperature")},
                              {"top_p", cfg.get<double>("top-p")}, {"top_k", cfg.get<int64_t>("top-k")},
                              {"max_new_tokens", eo.max_new_tokens},
                              {"seed", cfg.get<uint64_t>("seed")}, {"ranks", ranks}};
    summary.update(summarize(results, k));
    nlohmann::json bad = nlohmann::json::array();
    for (const BadRow& b : bench.bad_rows) bad.push_back({{"row", b.line}, {"reason", b.reason}});
    for (const std::string& l : split_lines(all_bad)) bad.push_back(nlohmann::json::parse(l));
    summary["bad_rows"] = bad.size();
    summary["bad_row_list"] = bad;
    summary["seconds"] = seconds;
    summary["tokens_per_s"] = double(tokens) / seconds;
    io::write_file_atomic(io::join_path(output, "summary.json"), summary.dump(2) + "\n");
    for (const auto& b : bad) log::warn("bad row %s: %s", b["row"].dump().c_str(), b["reason"].get<std::string>().c_str());
    log::info("%s on %s: %lld problems (%lld text, %lld image), k=%d: avg@k %.4f, pass@k %.4f, maj@k %.4f; "
              "%lld bad rows; %.0f tok/s -> %s",
              model_path.c_str(), name.c_str(), (long long)summary["problems"].get<int64_t>(),
              (long long)summary["text_problems"].get<int64_t>(), (long long)summary["image_problems"].get<int64_t>(), k,
              summary["avg_at_k"].get<double>(), summary["pass_at_k"].get<double>(), summary["maj_at_k"].get<double>(),
              (long long)bad.size(), double(tokens) / seconds, output.c_str());
  }
  return kExitOk;
}

}  // namespace ovr::eval
