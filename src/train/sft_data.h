// SFT data: JSONL conversations -> token ids with a loss mask -> a deterministic plan of packed
// rows for every epoch.
//
// Input, one object per line, the common "messages" form:
//   {"messages": [{"role": "system"|"user"|"assistant", "content": "text" | [
//       {"type": "text", "text": ...}, {"type": "image", "image": "PATH"}]}]}
// rendered with Qwen2.5-VL's chat template; the loss is taken on assistant tokens only (see
// text/chat_template.h). Image paths are relative to the JSONL file's folder.
//
// Plan: each epoch shuffles the documents with its own seed (seed, epoch) and, with packing, fills
// rows of seq_len tokens greedily in that order: a document that does not fit in the current row
// starts the next one. The plan depends only on the data, the seed, seq_len and packing, never on
// the number of ranks, so a step trains on the same rows on any world size, and (epoch, row) is a
// complete data cursor.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "text/chat_template.h"
#include "image/image_processor.h"
#include "text/tokenizer.h"

namespace ovr::train {

struct SftImage {
  std::string path;
  std::array<int64_t, 3> grid_thw;
};

struct SftDocument {
  std::vector<int32_t> ids;
  std::vector<uint8_t> loss_mask;  // 1 = an assistant token (a target of the loss)
  std::vector<SftImage> images;
  std::string source;              // "FILE:LINE", for messages
};

struct SftDataOptions {
  int64_t seq_len = 4096;
  std::string overlong = "truncate";  // truncate | drop: documents longer than seq_len
  bool skip_bad_rows = false;          // count malformed rows instead of failing on the first
  text::ChatOptions chat;
};

struct SftDataset {
  std::vector<SftDocument> docs;
  int64_t bad_rows = 0, truncated = 0, dropped_overlong = 0, dropped_no_loss = 0;
  uint32_t fingerprint = 0;  // CRC-32 of every document's ids and mask, in order
};

// Reads and tokenizes the files in order. A malformed row is an ovr::Error "FILE:LINE: what",
// or, with skip_bad_rows, counted. `images` may be null when no row has images (an image row is
// then an error naming it).
SftDataset load_sft_jsonl(const std::vector<std::string>& paths, const text::Tokenizer& tok,
                          const image::ImageProcessor* images, const SftDataOptions& options);

struct PackedRow {
  std::vector<int64_t> docs;  // document indices, in row order
  int64_t tokens = 0;
};
// Rows of one epoch: greedy packing into seq_len tokens, or one document per row.
std::vector<PackedRow> pack_rows(const std::vector<int64_t>& order, const std::vector<SftDocument>& docs,
                                 int64_t seq_len, bool packing);
// The same from the documents' lengths alone (what a rank knows of documents it will not read).
std::vector<PackedRow> pack_rows(const std::vector<int64_t>& order, const std::vector<int64_t>& lengths, int64_t seq_len,
                                 bool packing);

// Every epoch's rows, and the steps they make at `global_batch` rows per step (an epoch's last
// rows that do not fill a step are left out and counted).
struct TrainingPlan {
  std::vector<std::vector<PackedRow>> epochs;
  std::vector<int64_t> steps_per_epoch;
  int64_t total_steps = 0, rows_left_out = 0;

  // The epoch and first row of global step `step` (0-based).
  void locate(int64_t step, int64_t global_batch, int64_t* epoch, int64_t* first_row) const;
};
TrainingPlan plan_training(const SftDataset& data, int64_t epochs, uint64_t seed, int64_t seq_len, bool packing,
                           int64_t global_batch);

}  // namespace ovr::train
