// The SFT loss: a packed row computes exactly what its documents compute one per row, and
// activation checkpointing changes memory, not gradients.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>

#include "model/qwen2.h"
#include "train/sft_batch.h"

using namespace ovr;

namespace {

model::Qwen2_5_VL tiny_model(bool mrope) {
  model::Qwen2Config c;
  c.model_type = mrope ? "qwen2_5_vl" : "qwen2";
  c.vocab_size = 50;
  c.hidden_size = 32;
  c.intermediate_size = 40;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  if (mrope) c.mrope_section = {1, 1, 2};
  torch::manual_seed(3);
  model::Qwen2_5_VL m;
  m.lm = model::Qwen2ForCausalLM(c);
  for (auto& p : m.lm->parameters()) {
    torch::NoGradGuard g;
    p.normal_(0, 0.2);
  }
  return m;
}

train::SftDataset three_documents() {
  train::SftDataset d;
  std::mt19937 rng(5);
  for (int len : {7, 12, 5}) {
    train::SftDocument doc;
    for (int t = 0; t < len; ++t) doc.ids.push_back(int32_t(rng() % 50)), doc.loss_mask.push_back(t % 3 != 0);
    d.docs.push_back(doc);
  }
  return d;
}

std::vector<at::Tensor> gradients(model::Qwen2_5_VL& m) {
  std::vector<at::Tensor> g;
  for (auto& p : m.lm->parameters()) g.push_back(p.grad().clone()), p.mutable_grad().reset();
  return g;
}

void expect_close(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b, double tol, const char* what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(torch::allclose(a[i], b[i], tol, 1e-6)) << what << ": parameter " << i << " max diff "
                                                         << (a[i] - b[i]).abs().max().item<double>();
}

class PackedEqualsUnpacked : public ::testing::TestWithParam<bool> {};

TEST_P(PackedEqualsUnpacked, SameLossAndGradients) {
  model::Qwen2_5_VL m = tiny_model(GetParam());
  const auto data = three_documents();
  const train::PackedRow packed{{0, 1, 2}, 24};
  const std::vector<train::PackedRow> single = {{{0}, 7}, {{1}, 12}, {{2}, 5}};

  const auto pb = train::make_sft_batch(data, {&packed}, -1, 2);
  EXPECT_EQ(pb.input_ids.size(1), 24);
  const at::Tensor packed_loss = train::sft_loss_sum(m, pb, nullptr, false);
  packed_loss.backward();
  const auto packed_grads = gradients(m);

  const auto ub = train::make_sft_batch(data, {&single[0], &single[1], &single[2]}, -1, 2);  // padded to 12
  EXPECT_EQ(ub.input_ids.size(1), 12);
  EXPECT_EQ(ub.targets, pb.targets);
  const at::Tensor unpacked_loss = train::sft_loss_sum(m, ub, nullptr, false);
  unpacked_loss.backward();
  const auto unpacked_grads = gradients(m);

  EXPECT_NEAR(packed_loss.item<double>(), unpacked_loss.item<double>(), 1e-5 * unpacked_loss.item<double>());
  expect_close(packed_grads, unpacked_grads, 1e-5, "packed vs unpacked");

  // And each document alone, one batch each: the same sum.
  double alone = 0;
  for (const auto& row : single) alone += train::sft_loss_sum(m, train::make_sft_batch(data, {&row}, -1, 2), nullptr, false).item<double>();
  EXPECT_NEAR(alone, packed_loss.item<double>(), 1e-5 * alone);
}

INSTANTIATE_TEST_SUITE_P(Rotary, PackedEqualsUnpacked, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "mrope" : "rope1d"; });

TEST(SftBatch, TargetsStayInsideEachDocumentAndFollowTheMask) {
  const auto data = three_documents();
  const train::PackedRow row{{0, 1}, 19};
  const auto b = train::make_sft_batch(data, {&row}, -1, 2);
  auto lab = b.labels.accessor<int64_t, 2>();
  auto pos = b.positions.accessor<int64_t, 3>();
  EXPECT_EQ(lab[0][6], train::kIgnoreIndex);  // the last token of document 0 predicts nothing
  EXPECT_EQ(pos[0][0][7], 0);                 // document 1 restarts its positions
  EXPECT_EQ(b.segments[0][7].item<int64_t>(), 1);
  for (int i = 0; i + 1 < 7; ++i)
    EXPECT_EQ(lab[0][i], data.docs[0].loss_mask[size_t(i + 1)] ? data.docs[0].ids[size_t(i + 1)] : train::kIgnoreIndex);
}

TEST(ActivationCheckpointing, SameLossAndGradientsAsWithout) {
  model::Qwen2_5_VL m = tiny_model(true);
  m.lm->train();
  const auto data = three_documents();
  const train::PackedRow row{{0, 1, 2}, 24};
  const auto b = train::make_sft_batch(data, {&row}, -1, 2);
  const at::Tensor plain = train::sft_loss_sum(m, b, nullptr, false);
  plain.backward();
  const auto g_plain = gradients(m);
  m.lm->checkpoint_activations = true;
  const at::Tensor ckpt = train::sft_loss_sum(m, b, nullptr, false);
  ckpt.backward();
  const auto g_ckpt = gradients(m);
  EXPECT_EQ(plain.item<double>(), ckpt.item<double>());
  expect_close(g_plain, g_ckpt, 1e-6, "checkpointed vs plain");
}

}  // namespace
