#include "train/sft_batch.h"

#include <torch/torch.h>

#include "common/error.h"

namespace ovr::train {

int64_t count_targets(const SftDataset& data, const PackedRow& row) {
  int64_t n = 0;
  for (int64_t d : row.docs) {
    const auto& mask = data.docs[size_t(d)].loss_mask;
    for (size_t i = 1; i < mask.size(); ++i) n += mask[i];
  }
  return n;
}

SftBatch make_sft_batch(const SftDataset& data, const std::vector<const PackedRow*>& rows, int64_t image_token_id,
                        int64_t spatial_merge_size) {
  const int64_t r_count = int64_t(rows.size());
  int64_t s = 1;
  for (const PackedRow* row : rows) s = std::max(s, row->tokens);
  SftBatch b;
  b.input_ids = torch::zeros({r_count, s}, at::kLong);
  b.positions = torch::zeros({3, r_count, s}, at::kLong);
  b.segments = torch::full({r_count, s}, -1, at::kLong);
  b.labels = torch::full({r_count, s}, kIgnoreIndex, at::kLong);
  auto ids = b.input_ids.accessor<int64_t, 2>();
  auto pos = b.positions.accessor<int64_t, 3>();
  auto seg = b.segments.accessor<int64_t, 2>();
  auto lab = b.labels.accessor<int64_t, 2>();
  for (int64_t r = 0; r < r_count; ++r) {
    int64_t at = 0;
    for (size_t k = 0; k < rows[size_t(r)]->docs.size(); ++k) {
      const SftDocument& doc = data.docs[size_t(rows[size_t(r)]->docs[k])];
      const int64_t len = int64_t(doc.ids.size());
      std::vector<int64_t> doc_pos;  // 3 x len, for a document with images
      if (!doc.images.empty()) {
        at::Tensor grid = torch::empty({int64_t(doc.images.size()), 3}, at::kLong);
        for (size_t i = 0; i < doc.images.size(); ++i)
          for (int a = 0; a < 3; ++a) grid[int64_t(i)][a] = doc.images[i].grid_thw[size_t(a)];
        const std::vector<int64_t> doc_ids(doc.ids.begin(), doc.ids.end());
        const at::Tensor p = model::rope_index(doc_ids, grid, image_token_id, spatial_merge_size).positions;
        const at::Tensor flat = p.to(at::kLong).contiguous().view({-1});
        doc_pos.assign(flat.data_ptr<int64_t>(), flat.data_ptr<int64_t>() + flat.numel());
        b.images.insert(b.images.end(), doc.images.begin(), doc.images.end());
      }
      for (int64_t i = 0; i < len; ++i) {
        ids[r][at + i] = doc.ids[size_t(i)];
        seg[r][at + i] = int64_t(k);
        for (int a = 0; a < 3; ++a) pos[a][r][at + i] = doc_pos.empty() ? i : doc_pos[size_t(a * len + i)];
        if (i + 1 < len && doc.loss_mask[size_t(i + 1)]) {
          lab[r][at + i] = doc.ids[size_t(i + 1)];
          ++b.targets;
        }
      }
      at += len;
    }
    b.tokens += at;
  }
  return b;
}

TargetStates hidden_at_targets(model::Qwen2_5_VL& m, const SftBatch& b, const image::ImageProcessor* processor,
                               bool train_vision) {
  const at::Device device = m.lm->model->embed_tokens->weight.device();
  const at::Tensor input_ids = b.input_ids.to(device);
  at::Tensor embeds = m.lm->embed(input_ids);
  if (!b.images.empty()) {
    if (!processor || !m.visual) throw Error("a batch with images needs the vision tower and an image processor");
    std::vector<std::string> paths;
    for (const SftImage& image : b.images) paths.push_back(image.path);
    const model::ImageInputs images = model::process_images(*processor, paths);
    at::Tensor features;
    {
      torch::AutoGradMode grad(train_vision && torch::GradMode::is_enabled());
      features = m.visual->forward(images.pixel_values.to(device).to(embeds.scalar_type()), images.grid_thw);
    }
    embeds = embeds.index_put({input_ids.eq(m.image_token_id)}, features.to(embeds.scalar_type()));
  }
  const at::Tensor mask = model::causal_segment_mask(b.segments.to(device), embeds.scalar_type());
  const at::Tensor hidden = m.lm->hidden_states(embeds, b.positions.to(device), mask);
  const at::Tensor labels = b.labels.to(device);
  const at::Tensor valid = labels.ne(kIgnoreIndex);
  return {hidden.index({valid}), labels.index({valid})};
}

ops::TokenLogprobs target_logprobs(model::Qwen2_5_VL& m, const TargetStates& s, bool with_entropy) {
  return ops::fused_logprob(s.hidden, m.lm->output_weight(), s.targets, with_entropy);
}

at::Tensor sft_loss_sum(model::Qwen2_5_VL& m, const SftBatch& b, const image::ImageProcessor* processor,
                        bool train_vision) {
  // Hidden states only where there is a target, and no logits at all: the fused kernel folds the
  // vocabulary projection into the log-prob tile by tile.
  const TargetStates s = hidden_at_targets(m, b, processor, train_vision);
  return ops::fused_nll_sum(s.hidden, m.lm->output_weight(), s.targets);
}

}  // namespace ovr::train
