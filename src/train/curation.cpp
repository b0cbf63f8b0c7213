#include "train/curation.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <unordered_set>

#include "common/error.h"
#include "io/fs.h"
#include "io/jsonl.h"
#include "train/sft_batch.h"

namespace ovr::train {

std::vector<DocScore> score_documents(model::Qwen2_5_VL& model, const SftDataset& data, const image::ImageProcessor* processor,
                                      int64_t first, int64_t last, int64_t batch_tokens) {
  torch::NoGradGuard no_grad;
  model.lm->eval();
  std::vector<DocScore> out;
  std::vector<PackedRow> rows;
  auto flush = [&] {
    if (rows.empty()) return;
    std::vector<const PackedRow*> micro;
    for (const PackedRow& r : rows) micro.push_back(&r);
    const SftBatch batch = make_sft_batch(data, micro, model.image_token_id, model.visual ? model.visual->config.spatial_merge_size : 2);
    const TargetStates states = hidden_at_targets(model, batch, processor, false);
    const at::Tensor logp = target_logprobs(model, states).logprob.to(at::kDouble).cpu();
    // Targets come row by row, each row's (one document's) in order.
    int64_t at = 0;
    for (const PackedRow& r : rows) {
      const SftDocument& d = data.docs[size_t(r.docs[0])];
      const int64_t n = count_targets(data, r);
      out.push_back({d.source, int64_t(d.ids.size()), n, -logp.narrow(0, at, n).sum().item<double>() / double(n)});
      at += n;
    }
    rows.clear();
  };
  int64_t held = 0;
  for (int64_t i = first; i < last; ++i) {
    const int64_t len = int64_t(data.docs[size_t(i)].ids.size());
    // Rows are padded to the longest: what a micro-batch costs is rows x longest.
    const int64_t longest = std::max(held, len);
    if (!rows.empty() && longest * int64_t(rows.size() + 1) > batch_tokens) flush(), held = 0;
    rows.push_back({{i}, len});
    held = std::max(held, len);
  }
  flush();
  return out;
}

Curation curate(const std::vector<DocScore>& scores, const CurationRules& rules) {
  const size_t n = scores.size();
  Curation c;
  c.keep.assign(n, true);
  std::vector<size_t> by_loss(n);
  std::iota(by_loss.begin(), by_loss.end(), 0);
  std::stable_sort(by_loss.begin(), by_loss.end(), [&](size_t a, size_t b) { return scores[a].loss > scores[b].loss; });
  const size_t top = size_t(std::floor(rules.drop_top * double(n)));
  int64_t dropped_top = 0, dropped_loss = 0, dropped_targets = 0, dropped_tokens = 0;
  for (size_t k = 0; k < top; ++k) c.keep[by_loss[k]] = false, ++dropped_top;
  for (size_t i = 0; i < n; ++i) {
    const DocScore& s = scores[i];
    if (rules.max_loss > 0 && s.loss > rules.max_loss) dropped_loss += c.keep[i], c.keep[i] = false;
    if (s.targets < rules.min_targets) dropped_targets += c.keep[i], c.keep[i] = false;
    if (rules.max_tokens > 0 && s.tokens > rules.max_tokens) dropped_tokens += c.keep[i], c.keep[i] = false;
  }
  // The loss distribution: quantiles and a 40-bin histogram from the lowest to the highest loss.
  std::vector<double> losses;
  for (const DocScore& s : scores) losses.push_back(s.loss);
  std::sort(losses.begin(), losses.end());
  auto quantile = [&](double q) { return losses.empty() ? 0.0 : losses[size_t(q * double(losses.size() - 1) + 0.5)]; };
  const double lo = losses.empty() ? 0 : losses.front(), hi = losses.empty() ? 0 : losses.back();
  constexpr int kBins = 40;
  std::vector<int64_t> kept_bins(kBins, 0), dropped_bins(kBins, 0);
  for (size_t i = 0; i < n; ++i) {
    const int b = hi > lo ? std::min(kBins - 1, int((scores[i].loss - lo) / (hi - lo) * kBins)) : 0;
    ++(c.keep[i] ? kept_bins : dropped_bins)[size_t(b)];
  }
  const int64_t kept = std::count(c.keep.begin(), c.keep.end(), true);
  c.report = {{"documents", n},
              {"kept", kept},
              {"dropped", int64_t(n) - kept},
              {"dropped_by", {{"drop_top", dropped_top}, {"max_loss", dropped_loss}, {"min_targets", dropped_targets},
                              {"max_tokens", dropped_tokens}}},
              {"rules", {{"drop_top", rules.drop_top}, {"max_loss", rules.max_loss}, {"min_targets", rules.min_targets},
                         {"max_tokens", rules.max_tokens}}},
              {"loss_threshold", top > 0 && top < n ? scores[by_loss[top]].loss : (top >= n ? lo : hi)},
              {"loss_quantiles", {{"min", lo}, {"p10", quantile(0.1)}, {"p50", quantile(0.5)}, {"p90", quantile(0.9)},
                                  {"p99", quantile(0.99)}, {"max", hi}}},
              {"histogram", {{"low", lo}, {"high", hi}, {"kept", kept_bins}, {"dropped", dropped_bins}}}};
  return c;
}

std::string score_line(const DocScore& s) {
  return nlohmann::json{{"source", s.source}, {"tokens", s.tokens}, {"targets", s.targets}, {"loss", s.loss}}.dump() + "\n";
}

DocScore parse_score_line(const std::string& line, const std::string& where) {
  nlohmann::json j;
  try {
    j = io::parse_json_object(line);
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  DocScore s;
  try {
    s = {j.at("source").get<std::string>(), j.at("tokens").get<int64_t>(), j.at("targets").get<int64_t>(), j.at("loss").get<double>()};
  } catch (const nlohmann::json::exception&) {
    throw Error(where + ": expected {\"source\", \"tokens\", \"targets\", \"loss\"} (an ovr_score scores.jsonl line)");
  }
  if (!std::isfinite(s.loss)) throw Error(where + ": loss is not a finite number");
  return s;
}

int64_t write_kept_rows(const std::vector<std::string>& paths, const std::vector<std::string>& kept, const std::string& out) {
  const std::unordered_set<std::string> wanted(kept.begin(), kept.end());
  std::string text;
  int64_t written = 0;
  for (const std::string& path : paths) {
    std::ifstream in(path);
    if (!in) throw Error(path + ": cannot be read");
    std::string line;
    for (int64_t n = 1; std::getline(in, line); ++n)
      if (wanted.count(path + ":" + std::to_string(n))) text += line + "\n", ++written;
    if (in.bad()) throw Error(path + ": read error");
  }
  io::write_file_atomic(out, text);
  return written;
}

}  // namespace ovr::train
