// Curating a cold-start corpus as the paper did: score every sample by its mean token loss under a
// pretrained model, then drop the hardest (highest loss: often noise, a wrong answer or a format
// the model cannot follow). ovr_score computes the scores (score_documents) and applies the rules
// (curate); the filter half is torch-free and can run again on saved scores without a model.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "image/image_processor.h"
#include "model/qwen2_5_vl.h"
#include "train/sft_data.h"

namespace ovr::train {

struct DocScore {
  std::string source;   // "FILE:LINE" of the JSONL row
  int64_t tokens = 0;   // the document's tokens (after --seq-len truncation)
  int64_t targets = 0;  // its loss tokens (assistant tokens after the first)
  double loss = 0;      // mean -log p(target | prefix) over its targets
};

// Mean token loss of documents [first, last) of `data`, batched as rows of one document of at
// most `batch_tokens` tokens together; no gradients. The same loss ovr_sft computes, document by
// document (the mean over a step is these weighted by targets).
std::vector<DocScore> score_documents(model::Qwen2_5_VL& model, const SftDataset& data, const image::ImageProcessor* processor,
                                      int64_t first, int64_t last, int64_t batch_tokens);

// Which documents to keep. A document is dropped when any rule holds: it is among the top
// `drop_top` fraction by loss (ties by source order, so the count is exact), its loss is over
// `max_loss` (0: off), it has fewer than `min_targets` targets or more than `max_tokens` tokens
// (0: off).
struct CurationRules {
  double drop_top = 0, max_loss = 0;
  int64_t min_targets = 0, max_tokens = 0;
};
struct Curation {
  std::vector<bool> keep;  // per score
  nlohmann::json report;   // counts per rule, the loss quantiles and histogram, the thresholds
};
Curation curate(const std::vector<DocScore>& scores, const CurationRules& rules);

// DocScore as one JSON line ({"source", "tokens", "targets", "loss"}) and back (errors name `where`).
std::string score_line(const DocScore& s);
DocScore parse_score_line(const std::string& line, const std::string& where);

// The rows of `paths` whose "FILE:LINE" is in `kept`, byte for byte, in file order, to `out`
// (atomically). Returns the number written.
int64_t write_kept_rows(const std::vector<std::string>& paths, const std::vector<std::string>& kept, const std::string& out);

}  // namespace ovr::train
