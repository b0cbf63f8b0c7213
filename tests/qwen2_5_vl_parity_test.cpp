// The vision tower, image-token fusion, M-RoPE positions and multimodal generation against
// Hugging Face transformers (fixtures of tests/fixtures/make_qwen2_5_vl_parity.py).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>

#include "common/error.h"
#include "io/tensor_store.h"
#include "io/torch_bridge.h"
#include "image/image_processor.h"
#include "model/qwen2_5_vl.h"
#include "engine/generation.h"

using namespace ovr;
using namespace ovr::model;

namespace {

const std::string kDir = std::string(OVR_TEST_FIXTURES) + "/qwen2_5_vl_tiny";

struct Fixture {
  Qwen2_5_VL m = load_qwen2_5_vl(kDir);
  std::unique_ptr<io::ModelSource> parity = io::open_model_source(kDir + "/parity.safetensors");
  at::Tensor ref(const std::string& name) { return io::read_tensor(*parity, name); }
  std::vector<int64_t> mm_ids() {
    at::Tensor ids = ref("mm_ids")[0];
    return std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

// Greedy continuation of a prompt with images through the generation engine, and the tokens
// transformers generated after the same prompt (the tail of `hf_output`).
std::pair<std::vector<int64_t>, std::vector<int64_t>> greedy_with_images(Qwen2_5_VL& m, const std::vector<int64_t>& ids,
                                                                          const at::Tensor& pix, const at::Tensor& grid,
                                                                          const at::Tensor& hf_output) {
  const auto in = m.inputs(ids, pix, grid);
  engine::GenerationRequest req;
  req.prompt_ids = ids;
  req.inputs_embeds = in.embeds;
  req.positions = in.positions;
  engine::EngineOptions o;
  o.sampling.greedy = true;
  o.max_new_tokens = 8;
  o.eos_ids = {511};
  const auto out = engine::GenerationEngine(m.lm, o).generate({req});
  std::vector<int64_t> hf;
  for (int64_t j = int64_t(ids.size()); j < hf_output.size(0); ++j) hf.push_back(hf_output[j].item<int64_t>());
  return {out[0].tokens, hf};
}

double rel_err(const at::Tensor& a, const at::Tensor& b) {
  const double e = (a - b).abs().max().item<double>() / b.abs().max().item<double>();
  std::printf("  relative error %.2e\n", e);
  return e;
}

}  // namespace

TEST(VisionParity, TowerFeaturesOfTwoImagesOfDifferentSizesMatchTransformers) {
  auto& f = fixture();
  torch::NoGradGuard no_grad;
  ASSERT_TRUE(f.m.visual);
  const at::Tensor got = f.m.visual->forward(f.ref("vision_pixel_values"), f.ref("vision_grid_thw"));
  EXPECT_LE(rel_err(got, f.ref("vision_features")), 1e-4);
}

TEST(VisionParity, WindowLayoutCoversEveryUnitOnceInWindows) {
  VisionConfig c;  // the 7B defaults: 112-pixel windows = 4x4 merged units
  const auto layout = window_layout(c, torch::tensor({1, 20, 12}).view({1, 3}));
  // 10 x 6 merged units -> windows of 4x4, 4x2, ... (3 x 2 windows), 60 units in all.
  EXPECT_EQ(layout.unit_order.size(), 60u);
  std::vector<int64_t> sorted = layout.unit_order;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 60; ++i) EXPECT_EQ(sorted[size_t(i)], i);
  EXPECT_EQ(layout.windows.size(), 6u);
  EXPECT_EQ(layout.windows[0][1], 4 * 4 * 4);
  EXPECT_EQ(layout.windows[1][1], 4 * 2 * 4);
  ASSERT_EQ(layout.images.size(), 1u);
  EXPECT_EQ(layout.images[0][1], 240);
}

TEST(MultimodalParity, RopeIndexOfTextAndTwoImagesMatchesTransformers) {
  auto& f = fixture();
  const RopeIndex r = rope_index(f.mm_ids(), f.ref("vision_grid_thw"), f.m.image_token_id, 2);
  EXPECT_TRUE(torch::equal(r.positions, f.ref("mm_position_ids").select(1, 0))) << r.positions;
  EXPECT_EQ(r.next_position, f.ref("mm_rope_deltas").item<int64_t>() + int64_t(f.mm_ids().size()));
}

TEST(MultimodalParity, LogitsOfTextWithImagesMatchTransformers) {
  auto& f = fixture();
  torch::NoGradGuard no_grad;
  const at::Tensor logits = f.m.logits(f.mm_ids(), f.ref("vision_pixel_values"), f.ref("vision_grid_thw"));
  EXPECT_LE(rel_err(logits, f.ref("mm_logits")[0]), 1e-4);
}

TEST(MultimodalParity, GreedyGenerationWithImagesMatchesTransformers) {
  auto& f = fixture();
  torch::NoGradGuard no_grad;
  const auto [ours, hf] =
      greedy_with_images(f.m, f.mm_ids(), f.ref("vision_pixel_values"), f.ref("vision_grid_thw"), f.ref("mm_gen_output_ids")[0]);
  EXPECT_EQ(ours, hf);
}

TEST(MultimodalErrors, ImageTokenCountMismatchNamesBothNumbers) {
  auto& f = fixture();
  auto ids = f.mm_ids();
  ids.erase(ids.begin() + 5);  // the first image now has 3 pads for 4 features
  try {
    rope_index(ids, f.ref("vision_grid_thw"), f.m.image_token_id, 2);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("image 0 has 3 <|image_pad|> tokens in the prompt but 4 vision features"),
              std::string::npos) << e.what();
  }
  try {
    rope_index(f.mm_ids(), f.ref("vision_grid_thw").narrow(0, 0, 1), f.m.image_token_id, 2);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("more images"), std::string::npos) << e.what();
  }
  EXPECT_THROW(f.m.visual->forward(f.ref("vision_pixel_values").narrow(0, 0, 10), f.ref("vision_grid_thw")), Error);
}

namespace {

// Image files through our processor (Pillow 13's resize, as the fixtures) and the model, against
// transformers' outputs named PREFIX_{grid_thw, pixel_values, vision_features, ids, logits,
// gen_output_ids} in `ref`: pixel_values to 1e-6, features and logits to 1e-4 relative, the same
// greedy tokens.
void expect_images_match(const std::string& dir, std::initializer_list<const char*> names, const std::string& prefix,
                         const std::function<at::Tensor(const std::string&)>& ref) {
  auto& f = fixture();
  torch::NoGradGuard no_grad;
  const image::ImageProcessor processor;
  std::vector<at::Tensor> rows;
  std::vector<int64_t> grids;
  for (const char* name : names) {
    auto p = processor.process_file(dir + "/" + name);
    rows.push_back(torch::from_blob(p.pixel_values.data(), {p.rows, p.cols}, at::kFloat).clone());
    grids.insert(grids.end(), p.grid_thw.begin(), p.grid_thw.end());
  }
  const at::Tensor pix = torch::cat(rows), grid = torch::tensor(grids).view({-1, 3});
  EXPECT_TRUE(torch::equal(grid, ref(prefix + "_grid_thw")));
  EXPECT_LE((pix - ref(prefix + "_pixel_values")).abs().max().item<double>(), 1e-6) << "pixel_values";
  EXPECT_LE(rel_err(f.m.visual->forward(pix, grid), ref(prefix + "_vision_features")), 1e-4);
  const at::Tensor ids_t = ref(prefix + "_ids")[0];
  const std::vector<int64_t> ids(ids_t.data_ptr<int64_t>(), ids_t.data_ptr<int64_t>() + ids_t.numel());
  EXPECT_LE(rel_err(f.m.logits(ids, pix, grid), ref(prefix + "_logits")[0]), 1e-4);
  const auto [ours, hf] = greedy_with_images(f.m, ids, pix, grid, ref(prefix + "_gen_output_ids")[0]);
  EXPECT_EQ(ours, hf);
}

}  // namespace

TEST(MultimodalParity, RealImagesThroughOurProcessorAndTowerMatchTransformers) {
  // Two PNGs of different, non-square sizes in one prompt.
  expect_images_match(std::string(OVR_TEST_FIXTURES) + "/image_processor/images",
                      {"pattern_56x84.png", "checker_noise_84x56.png"}, "real",
                      [](const std::string& name) { return fixture().ref(name); });
}

TEST(MultimodalParity, TransparentImagesThroughOurProcessorAndTowerMatchTransformers) {
  // Two RGBA PNGs (black strokes on a transparent background; the second also resized 45x95 ->
  // 56x84, where Pillow 13's pass order differs from 12's), composited onto white by both sides
  // (make_qwen2_5_vl_alpha_parity.py). Dropping alpha instead changes 75% of the first image's
  // pixel_values, by up to 3.8.
  const auto alpha = io::open_model_source(kDir + "/parity_alpha.safetensors");
  expect_images_match(std::string(OVR_TEST_FIXTURES) + "/image_modes/images",
                      {"rgba_transparent_56x56.png", "rgba_resize_45x95.png"}, "alpha",
                      [&](const std::string& name) { return io::read_tensor(*alpha, name); });
}
