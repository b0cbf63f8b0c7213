// ovr_eval --rescore (eval/rescore.h).
#include "eval/rescore.h"

#include <unistd.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/error.h"
#include "common/log.h"
#include "eval/benchmark.h"
#include "eval/scores.h"
#include "io/fs.h"

namespace ovr::eval {

double rescore(const std::string& dir_or_results, const std::string& output, const reward::RewardOptions& opt) {
  if (!io::path_exists(dir_or_results))
    throw Error(dir_or_results + ": no such file or directory (expected an ovr_eval output directory or its results.jsonl)");
  const bool is_file = !io::is_directory(dir_or_results);
  const std::string dir = is_file ? io::parent_dir(dir_or_results) : dir_or_results;
  const std::string results_path = is_file ? dir_or_results : io::join_path(dir, "results.jsonl");
  const std::string summary_path = io::join_path(dir, "summary.json");
  nlohmann::json summary;
  try {
    summary = nlohmann::json::parse(io::read_text_file(summary_path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(summary_path + ": not valid JSON (" + e.what() + ")");
  }
  for (const char* key : {"data", "format", "k"})
    if (!summary.contains(key)) throw Error(summary_path + ": no \"" + key + "\" (not an ovr_eval summary)");
  const int k = summary["k"].get<int>();

  // The options of each multiple-choice row, from the benchmark file as the run read it.
  const std::string data = summary["data"].get<std::string>();
  const Benchmark bench = load_benchmark(data, summary["format"].get<std::string>(),
                                         parse_field_map(summary.value("fields", std::string())),
                                         summary.value("instruction", std::string("auto")));
  std::map<int64_t, const Problem*> by_row;
  for (const Problem& p : bench.problems) by_row[p.line] = &p;

  // Streamed line by line: a results file of several GB is never held whole; only each sample's
  // summary_fields are kept for the figures.
  const std::string out_dir = output.empty() ? dir : output;
  io::make_dirs(out_dir);
  const std::string out_path = io::join_path(out_dir, "results.jsonl"), tmp_path = out_path + ".tmp";
  std::vector<nlohmann::json> results;
  int64_t n = 0, changed = 0;
  std::ifstream in(results_path);
  if (!in) throw Error(results_path + ": cannot be read");
  std::ofstream out(tmp_path, std::ios::trunc);
  if (!out) throw Error(tmp_path + ": cannot be created");
  try {
    for (std::string line; std::getline(in, line);) {
      ++n;
      if (line.empty()) continue;
      nlohmann::json r;
      try {
        r = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        throw Error(results_path + ": line " + std::to_string(n) + ": not valid JSON (" + e.what() + ")");
      }
      for (const char* key : {"row", "response", "answer", "finish_reason", "score"})
        if (!r.contains(key)) throw Error(results_path + ": line " + std::to_string(n) + ": no \"" + key + "\"");
      auto it = by_row.find(r["row"].get<int64_t>());
      if (it == by_row.end())
        throw Error(results_path + ": line " + std::to_string(n) + ": row " + r["row"].dump() + " is not a usable problem of " +
                    data + " (the file changed since the evaluation?)");
      const Problem& p = *it->second;  // its options and precision; the reference is the one the run recorded
      const reward::RewardResult s = score_answer(r["response"].get<std::string>(), r["answer"].get<std::string>(), p.options,
                                                  r["finish_reason"] == "length", problem_reward_options(p, opt));
      changed += s.reward != r["score"].get<double>();
      r["extracted"] = s.extracted, r["score"] = s.reward, r["reason"] = s.reason;
      out << r.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
      if (!out) throw Error(tmp_path + ": write failed (disk full?)");
      results.push_back(summary_fields(r));
    }
    if (in.bad()) throw Error(results_path + ": read error");
    if (results.empty()) throw Error(results_path + ": no results to rescore");
    out.close();
    if (!out) throw Error(tmp_path + ": write failed (disk full?)");
  } catch (...) {
    out.close();
    ::unlink(tmp_path.c_str());
    throw;
  }

  try {  // nothing is left behind if the figures (e.g. a k that does not match) or the sync fail
    summary.update(summarize(results, k));
    summary["rescored"] = {{"from", results_path},
                           {"changed_scores", changed},
                           {"answer_tag", opt.extract.require_answer_tag},
                           {"min_significant_digits", opt.equiv.min_significant_digits},
                           {"decimal_places", opt.equiv.decimal_places}};
    io::fsync_file(tmp_path);
    io::rename_durable(tmp_path, out_path);
  } catch (...) {
    ::unlink(tmp_path.c_str());
    throw;
  }
  io::write_file_atomic(io::join_path(out_dir, "summary.json"), summary.dump(2) + "\n");
  log::info("rescored %lld samples of %s (%lld scores changed): avg@k %.4f, pass@k %.4f, maj@k %.4f -> %s",
            (long long)results.size(), results_path.c_str(), (long long)changed, summary["avg_at_k"].get<double>(),
            summary["pass_at_k"].get<double>(), summary["maj_at_k"].get<double>(), out_dir.c_str());
  return summary["avg_at_k"].get<double>();
}

}  // namespace ovr::eval
