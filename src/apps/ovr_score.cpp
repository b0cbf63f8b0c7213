// ovr_score: the paper's curation of the cold-start corpus. Each sample's mean token loss under a
// pretrained model (MPI-parallel: each rank scores a contiguous share), then rules that drop the
// hardest samples; the kept rows are written out unchanged. The algorithm is in train/curation.h.
#include <torch/torch.h>

#include <fstream>

#include "common/config.h"
#include "common/error.h"
#include "common/gather.h"
#include "common/log.h"
#include "common/mpi_runtime.h"
#include "engine/engine_setup.h"
#include "io/concatenated_file.h"
#include "io/fs.h"
#include "io/run_lock.h"
#include "train/curation.h"

using namespace ovr;

namespace {

train::CurationRules read_rules(const Config& cfg) {
  train::CurationRules r{cfg.get<double>("drop-top"), cfg.get<double>("max-loss"), cfg.get<int64_t>("min-targets"),
                         cfg.get<int64_t>("max-tokens")};
  if (r.drop_top < 0 || r.drop_top >= 1) throw ConfigError("--drop-top: must be in [0, 1)");
  if (r.max_loss < 0) throw ConfigError("--max-loss: must be >= 0 (0: off)");
  return r;
}

// Every rank's scores on rank 0, in document order ("" elsewhere).
std::vector<train::DocScore> gather_scores(const std::string& mine, const std::string& what) {
  std::vector<train::DocScore> all;
  const std::string text = gather_to_root(MPI_COMM_WORLD, mine);
  size_t at = 0;
  for (int64_t n = 1; at < text.size(); ++n) {
    const size_t end = text.find('\n', at);
    all.push_back(train::parse_score_line(text.substr(at, end - at), what + ":" + std::to_string(n)));
    at = end + 1;
  }
  return all;
}

int run(const Config& cfg) {
  const std::string output = cfg.get<std::string>("output");
  const std::vector<std::string> data = cfg.get<std::vector<std::string>>("data");
  const train::CurationRules rules = read_rules(cfg);
  const io::RunLock lock(output, MPI_COMM_WORLD);
  const std::string scores_path = io::join_path(output, "scores.jsonl");

  std::vector<train::DocScore> scores;  // all of them, on rank 0
  if (cfg.has("from-scores")) {
    // Rules only, on saved scores: no model.
    const std::string from = cfg.get<std::string>("from-scores");
    if (world_rank() == 0) {
      std::ifstream in(from);
      if (!in) throw Error(from + ": cannot be read");
      std::string line;
      for (int64_t n = 1; std::getline(in, line); ++n)
        if (!line.empty()) scores.push_back(train::parse_score_line(line, from + ":" + std::to_string(n)));
      if (scores.empty()) throw Error(from + ": no scores");
    }
  } else {
    if (!cfg.has("model")) throw ConfigError("--model: required (or --from-scores FILE)");
    const std::string model_path = cfg.get<std::string>("model");
    const text::Tokenizer tok = engine::load_tokenizer(cfg, model_path);
    engine::check_device_option(cfg.get<std::string>("device"));
    engine::Policy policy = engine::load_policy(model_path, cfg.get<std::string>("device"));
    const image::ImageProcessor processor = engine::load_image_processor(cfg);
    train::SftDataOptions opt;
    opt.seq_len = cfg.get<int64_t>("seq-len");
    opt.overlong = cfg.get<std::string>("overlong");
    opt.skip_bad_rows = cfg.get<bool>("skip-bad-rows");
    if (opt.seq_len < 2) throw ConfigError("--seq-len: must be at least 2");
    const train::SftDataset docs = train::load_sft_jsonl(data, tok, policy.model.visual ? &processor : nullptr, opt);
    const int64_t n = int64_t(docs.docs.size()), rank = world_rank(), ranks = world_size();
    log::info("scoring %lld documents (%lld malformed rows skipped, %lld truncated, %lld dropped over --seq-len, %lld without "
              "targets) on %lld rank(s), %s",
              (long long)n, (long long)docs.bad_rows, (long long)docs.truncated, (long long)docs.dropped_overlong,
              (long long)docs.dropped_no_loss, (long long)ranks, policy.device.str().c_str());
    const auto mine = train::score_documents(policy.model, docs, policy.model.visual ? &processor : nullptr, n * rank / ranks,
                                             n * (rank + 1) / ranks, cfg.get<int64_t>("batch-tokens"));
    std::string lines;
    for (const auto& s : mine) lines += train::score_line(s);
    io::write_concatenated(scores_path, MPI_COMM_WORLD, lines);
    scores = gather_scores(lines, scores_path);
  }

  if (world_rank() == 0) {
    const train::Curation c = train::curate(scores, rules);
    std::vector<std::string> kept;
    for (size_t i = 0; i < scores.size(); ++i)
      if (c.keep[i]) kept.push_back(scores[i].source);
    const int64_t written = train::write_kept_rows(data, kept, io::join_path(output, "curated.jsonl"));
    nlohmann::json report = c.report;
    report["data"] = data;
    report["scores"] = cfg.has("from-scores") ? cfg.get<std::string>("from-scores") : scores_path;
    report["curated_rows"] = written;
    io::write_file_atomic(io::join_path(output, "report.json"), report.dump(2) + "\n");
    log::info("kept %lld of %lld documents (dropped: %lld top %.0f%% by loss, %lld over --max-loss, %lld under --min-targets, "
              "%lld over --max-tokens); loss p50 %.4f, p90 %.4f, max %.4f -> %s",
              (long long)report["kept"].get<int64_t>(), (long long)report["documents"].get<int64_t>(),
              (long long)report["dropped_by"]["drop_top"].get<int64_t>(), 100 * rules.drop_top,
              (long long)report["dropped_by"]["max_loss"].get<int64_t>(),
              (long long)report["dropped_by"]["min_targets"].get<int64_t>(),
              (long long)report["dropped_by"]["max_tokens"].get<int64_t>(), report["loss_quantiles"]["p50"].get<double>(),
              report["loss_quantiles"]["p90"].get<double>(), report["loss_quantiles"]["max"].get<double>(), output.c_str());
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("ovr_score", argc, argv, [](int ac, char** av) {
    Config cfg("ovr_score", "mpirun -n N ovr_score --model MODEL --data train.jsonl -o DIR [--drop-top 0.1] [options]",
               "Curates an SFT corpus as the paper did: every sample's mean token loss (assistant tokens, as ovr_sft\n"
               "computes it) under a pretrained model, then the hardest samples dropped. Writes DIR/scores.jsonl (one\n"
               "line per usable row: source FILE:LINE, tokens, targets, loss), DIR/curated.jsonl (the kept rows,\n"
               "unchanged) and DIR/report.json (counts per rule, loss quantiles and histogram; plot it with\n"
               "postprocess/curation_plot.py). --from-scores applies other rules to saved scores without a model.");
    engine::add_model_input_options(cfg);
    cfg.options().add_options()
        ("model", po::value<std::string>(), "the scoring model (HF directory or ovr checkpoint)")
        ("data", po::value<std::vector<std::string>>()->required()->multitoken(), "JSONL file(s) of {\"messages\": [...]}")
        ("output,o", po::value<std::string>()->required(), "output directory")
        ("seq-len", po::value<int64_t>()->default_value(32768), "tokens a document may have (as the SFT run's --seq-len)")
        ("overlong", po::value<std::string>()->default_value("truncate"), "documents over --seq-len: truncate or drop")
        ("skip-bad-rows", po::bool_switch()->default_value(false), "skip and count malformed rows instead of stopping")
        ("batch-tokens", po::value<int64_t>()->default_value(16384), "tokens (rows x longest) scored together")
        ("drop-top", po::value<double>()->default_value(0.0), "drop this fraction of the documents with the highest loss")
        ("max-loss", po::value<double>()->default_value(0.0), "drop documents whose loss is above this (0: off)")
        ("min-targets", po::value<int64_t>()->default_value(0), "drop documents with fewer loss tokens")
        ("max-tokens", po::value<int64_t>()->default_value(0), "drop documents with more tokens (0: off)")
        ("from-scores", po::value<std::string>(), "apply the rules to this scores.jsonl instead of scoring (no model)");
    if (!cfg.parse(ac, av)) return int(kExitOk);
    return run(cfg);
  });
}
