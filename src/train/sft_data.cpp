#include "train/sft_data.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/checksum.h"
#include "common/seeded_order.h"
#include "io/fs.h"
#include "io/jsonl.h"

namespace ovr::train {

namespace {

// One row of a JSONL file -> a document (throws ovr::Error without the location; the caller adds it).
SftDocument parse_row(const std::string& line, const std::string& dir, const text::Tokenizer& tok,
                      const image::ImageProcessor* processor, const text::ChatOptions& chat) {
  const nlohmann::json row = io::parse_json_object(line);
  if (!row.contains("messages")) throw Error("expected {\"messages\": [...]}");
  const auto messages = text::chat_messages_from_json(row["messages"]);
  bool has_assistant = false;
  for (const auto& m : messages) has_assistant |= m.role == "assistant";
  if (!has_assistant) throw Error("no assistant message: nothing to learn from");

  SftDocument doc;
  std::vector<int64_t> pad_counts;
  for (const std::string& src : text::chat_image_sources(row["messages"])) {
    if (src.empty()) throw Error("an image item names no file");
    if (!processor) throw Error("has an image, but this model has no vision tower");
    const std::string path = src.front() == '/' ? src : io::join_path(dir, src);
    const image::ProcessedImage img = processor->process_file(path);
    doc.images.push_back({path, img.grid_thw});
    pad_counts.push_back(img.num_image_tokens());
  }
  text::ChatTokens t = text::apply_chat_template(tok, messages, pad_counts, chat);
  doc.ids = std::move(t.ids);
  doc.loss_mask = std::move(t.assistant_mask);
  return doc;
}

}  // namespace

SftDataset load_sft_jsonl(const std::vector<std::string>& paths, const text::Tokenizer& tok,
                          const image::ImageProcessor* images, const SftDataOptions& options) {
  if (options.overlong != "truncate" && options.overlong != "drop")
    throw ConfigError("--overlong: expected truncate or drop, got '" + options.overlong + "'");
  SftDataset data;
  for (const std::string& path : paths) {
    std::ifstream in = io::open_jsonl(path);
    const std::string dir = io::parent_dir(path);
    std::string line;
    for (int64_t n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string where = path + ":" + std::to_string(n);
      SftDocument doc;
      try {
        doc = parse_row(line, dir, tok, images, options.chat);
      } catch (const Error& e) {
        if (!options.skip_bad_rows) throw Error(where + ": " + e.what() + " (--skip-bad-rows counts and skips such rows)");
        ++data.bad_rows;
        continue;
      }
      doc.source = where;
      if (int64_t(doc.ids.size()) > options.seq_len) {
        // A cut through an image's tokens would leave a picture without its features: drop those.
        if (options.overlong == "drop" || !doc.images.empty()) {
          ++data.dropped_overlong;
          continue;
        }
        doc.ids.resize(size_t(options.seq_len));
        doc.loss_mask.resize(size_t(options.seq_len));
        ++data.truncated;
      }
      // The first token is never a target (nothing predicts it); a row needs a later one.
      int64_t targets = 0;
      for (size_t i = 1; i < doc.loss_mask.size(); ++i) targets += doc.loss_mask[i];
      if (targets == 0) {
        ++data.dropped_no_loss;
        continue;
      }
      data.fingerprint = io::crc32_update(data.fingerprint, doc.ids.data(), doc.ids.size() * sizeof(int32_t));
      data.fingerprint = io::crc32_update(data.fingerprint, doc.loss_mask.data(), doc.loss_mask.size());
      data.docs.push_back(std::move(doc));
    }
    if (in.bad()) throw Error(path + ": read error");
  }
  if (data.docs.empty()) throw Error("no usable training documents in " + (paths.empty() ? std::string("(no --data)") : paths[0]));
  return data;
}

std::vector<PackedRow> pack_rows(const std::vector<int64_t>& order, const std::vector<SftDocument>& docs,
                                 int64_t seq_len, bool packing) {
  std::vector<int64_t> lengths;
  for (const SftDocument& d : docs) lengths.push_back(int64_t(d.ids.size()));
  return pack_rows(order, lengths, seq_len, packing);
}

std::vector<PackedRow> pack_rows(const std::vector<int64_t>& order, const std::vector<int64_t>& lengths, int64_t seq_len,
                                 bool packing) {
  std::vector<PackedRow> rows;
  for (int64_t d : order) {
    const int64_t len = lengths[size_t(d)];
    if (!packing || rows.empty() || rows.back().tokens + len > seq_len) rows.emplace_back();
    rows.back().docs.push_back(d);
    rows.back().tokens += len;
  }
  return rows;
}

TrainingPlan plan_training(const SftDataset& data, int64_t epochs, uint64_t seed, int64_t seq_len, bool packing,
                           int64_t global_batch) {
  TrainingPlan plan;
  for (int64_t e = 0; e < epochs; ++e) {
    plan.epochs.push_back(pack_rows(epoch_order(int64_t(data.docs.size()), seed, e), data.docs, seq_len, packing));
    const int64_t rows = int64_t(plan.epochs.back().size());
    plan.steps_per_epoch.push_back(rows / global_batch);
    plan.total_steps += rows / global_batch;
    plan.rows_left_out += rows % global_batch;
  }
  return plan;
}

void TrainingPlan::locate(int64_t step, int64_t global_batch, int64_t* epoch, int64_t* first_row) const {
  for (size_t e = 0; e < steps_per_epoch.size(); ++e) {
    if (step < steps_per_epoch[e]) {
      *epoch = int64_t(e);
      *first_row = step * global_batch;
      return;
    }
    step -= steps_per_epoch[e];
  }
  throw Error("training plan: step past the end");
}

}  // namespace ovr::train
