#include "model/qwen2_5_vl.h"

#include <torch/torch.h>

#include "common/error.h"
#include "io/fs.h"
#include "io/tensor_store.h"
#include "io/shared_model_source.h"
#include "model/weights.h"

namespace ovr::model {

RopeIndex rope_index(const std::vector<int64_t>& ids, const at::Tensor& grid_thw, int64_t image_token_id, int64_t sms) {
  const at::Tensor grid = grid_thw.defined() ? grid_thw.to(at::kCPU, at::kLong) : at::Tensor();
  const int64_t images = grid.defined() ? grid.size(0) : 0;
  const int64_t s = int64_t(ids.size());
  std::vector<int64_t> pos[3];
  int64_t next = 0, image = 0;  // next: one past the largest position so far
  for (int64_t i = 0; i < s;) {
    if (ids[size_t(i)] != image_token_id) {
      for (auto& axis : pos) axis.push_back(next);
      ++next, ++i;
      continue;
    }
    // A run of image tokens: the next image of grid_thw.
    int64_t run = 0;
    while (i + run < s && ids[size_t(i + run)] == image_token_id) ++run;
    if (image >= images)
      throw Error("image tokens: the prompt has more images (runs of <|image_pad|>) than the " + std::to_string(images) +
                  " given");
    const int64_t t = grid[image][0].item<int64_t>(), h = grid[image][1].item<int64_t>() / sms,
                  w = grid[image][2].item<int64_t>() / sms;
    if (run != t * h * w)
      throw Error("image tokens: image " + std::to_string(image) + " has " + std::to_string(run) +
                  " <|image_pad|> tokens in the prompt but " + std::to_string(t * h * w) + " vision features (grid " +
                  std::to_string(t) + "x" + std::to_string(h * sms) + "x" + std::to_string(w * sms) + ")");
    int64_t top = next;
    for (int64_t f = 0; f < t; ++f)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          pos[0].push_back(next);  // still images: the temporal axis stays at the start
          pos[1].push_back(next + y);
          pos[2].push_back(next + x);
          top = std::max({top, next + y, next + x});
        }
    next = top + 1;
    i += run;
    ++image;
  }
  if (image != images)
    throw Error("image tokens: " + std::to_string(images) + " images given but the prompt has " + std::to_string(image));
  at::Tensor p = torch::stack({torch::tensor(pos[0]), torch::tensor(pos[1]), torch::tensor(pos[2])});
  return {p, next};
}

Qwen2_5_VL::Inputs Qwen2_5_VL::inputs(const std::vector<int64_t>& ids, const at::Tensor& pixel_values,
                                      const at::Tensor& grid_thw) {
  const at::Device device = lm->model->embed_tokens->weight.device();
  const RopeIndex r = rope_index(ids, grid_thw, image_token_id, visual ? visual->config.spatial_merge_size : 2);
  at::Tensor embeds = lm->embed(torch::tensor(ids).to(device));  // [S, hidden]
  if (pixel_values.defined() && pixel_values.numel() > 0) {
    if (!visual) throw Error("image tokens: this model has no vision tower");
    at::Tensor features = visual->forward(pixel_values.to(device), grid_thw);
    const at::Tensor is_image = torch::tensor(ids).eq(image_token_id).to(device);
    const int64_t slots = is_image.sum().item<int64_t>();
    if (slots != features.size(0))
      throw Error("image tokens: " + std::to_string(slots) + " <|image_pad|> tokens but " +
                  std::to_string(features.size(0)) + " vision features");
    embeds = embeds.index_put({is_image}, features.to(embeds.scalar_type()));
  }
  return {embeds, r.positions.to(device), r.next_position};
}

at::Tensor Qwen2_5_VL::logits(const std::vector<int64_t>& ids, const at::Tensor& pixel_values, const at::Tensor& grid_thw) {
  const Inputs in = inputs(ids, pixel_values, grid_thw);
  const int64_t s = in.embeds.size(0);
  const at::Tensor mask = causal_segment_mask(torch::zeros({1, s}, at::kLong).to(in.embeds.device()), in.embeds.scalar_type());
  return lm->logits(lm->hidden_states(in.embeds.unsqueeze(0), in.positions.unsqueeze(1), mask))[0];
}

ImageInputs process_images(const image::ImageProcessor& processor, const std::vector<std::string>& paths) {
  ImageInputs out;
  std::vector<at::Tensor> rows;
  std::vector<int64_t> grids;
  for (const std::string& path : paths) {
    image::ProcessedImage p = processor.process_file(path);
    rows.push_back(torch::from_blob(p.pixel_values.data(), {p.rows, p.cols}, at::kFloat).clone());
    grids.insert(grids.end(), p.grid_thw.begin(), p.grid_thw.end());
    out.pad_counts.push_back(p.num_image_tokens());
  }
  if (!rows.empty()) {
    out.pixel_values = torch::cat(rows, 0);
    out.grid_thw = torch::tensor(grids).view({-1, 3});
  }
  return out;
}

Qwen2_5_VL load_qwen2_5_vl(const std::string& path, MPI_Comm comm) {
  Qwen2_5_VL m;
  m.lm = load_qwen2_lm(path, comm);
  m.image_token_id = m.lm->config.image_token_id;
  auto src = io::open_model_source_shared(path, comm);
  const auto json = nlohmann::json::parse(src->model_config(), nullptr, /*allow_exceptions=*/false);
  if (json.is_object() && json.contains("vision_config")) {
    m.visual = VisionTransformer(parse_vision_config(json, src->origin()));
    load_parameters(*m.visual, *src, {}, "visual.");
    m.visual->eval();
  }
  return m;
}

}  // namespace ovr::model
