// ovr_inspect reward: score JSONL responses against reference answers with the verifiable reward.
#include <nlohmann/json.hpp>

#include "apps/inspect_commands.h"
#include "common/config.h"
#include "common/error.h"
#include "common/mpi_runtime.h"
#include "eval/benchmark.h"
#include "reward/reward.h"

namespace ovr::apps {

int inspect_reward(int argc, char** argv) {
  Config cfg("ovr_inspect reward", "ovr_inspect reward [--answer-tag] [--min-digits N] [--decimal-places N] < in.jsonl > out.jsonl",
             "Scores JSONL from stdin, one object per line: {\"response\": ..., \"answer\": ...} becomes\n"
             "{\"reward\": 1|0, \"extracted\": ..., \"reason\": ...}, with reason one of correct, wrong, no_answer,\n"
             "truncated, too_long. A line with \"truncated\": true or \"finish_reason\": \"length\" scores 0 (the\n"
             "answer is still extracted). With \"options\": [...] the row is multiple choice and scores the letter\n"
             "the response chose (in any common wrapping, or an option's text), as ovr_eval scores it. Other\n"
             "fields are ignored. A line that is not such an object ends the\n"
             "run with exit status 1 and an error naming the line number.");
  cfg.options().add_options()
      ("answer-tag", po::bool_switch()->default_value(false), "look for the answer only inside the last <answer>...</answer>")
      ("min-digits", po::value<int>()->default_value(4),
       "significant digits a decimal needs to stand for a non-terminating exact answer (0.3333 for 1/3)")
      ("decimal-places", po::value<int>()->default_value(-1),
       "a stated precision: both numbers rounded to this many decimals before comparing (-1: none)");
  if (!cfg.parse(argc, argv)) return kExitOk;
  if (world_rank() != 0) return kExitOk;  // stdin reaches rank 0 only
  reward::RewardOptions opt;
  opt.extract.require_answer_tag = cfg.get<bool>("answer-tag");
  opt.equiv.min_significant_digits = cfg.get<int>("min-digits");
  opt.equiv.decimal_places = cfg.get<int>("decimal-places");
  if (opt.equiv.min_significant_digits < 1 || opt.equiv.min_significant_digits > 17)
    throw ConfigError("--min-digits must be in 1..17");
  if (opt.equiv.decimal_places < -1 || opt.equiv.decimal_places > 15) throw ConfigError("--decimal-places must be in -1..15");
  return for_each_stdin_json_line([&](const nlohmann::json& in) {
    if (!in.is_object() || !in.contains("response") || !in["response"].is_string() || !in.contains("answer") ||
        !in["answer"].is_string())
      throw Error("expected {\"response\": string, \"answer\": string}");
    bool truncated = false;
    if (in.contains("truncated")) {
      if (!in["truncated"].is_boolean()) throw Error("\"truncated\" must be true or false");
      truncated = in["truncated"].get<bool>();
    }
    if (in.contains("finish_reason")) {
      if (!in["finish_reason"].is_string()) throw Error("\"finish_reason\" must be a string");
      truncated = truncated || in["finish_reason"].get<std::string>() == "length";
    }
    std::vector<std::string> options;  // a multiple-choice row: scored by the chosen letter, as ovr_eval does
    if (in.contains("options")) {
      if (!in["options"].is_array()) throw Error("\"options\" must be a list of strings");
      for (const auto& o : in["options"]) {
        if (!o.is_string()) throw Error("\"options\" must be a list of strings");
        options.push_back(o.get<std::string>());
      }
    }
    const reward::RewardResult r =
        eval::score_answer(in["response"].get<std::string>(), in["answer"].get<std::string>(), options, truncated, opt);
    nlohmann::ordered_json out;  // keys in the documented order
    out["reward"] = r.reward;
    out["extracted"] = r.extracted;
    out["reason"] = r.reason;
    return out;
  });
}

}  // namespace ovr::apps
