// The language model against Hugging Face transformers (fixtures made by
// tests/fixtures/make_qwen2_5_vl_parity.py): logits of padded batches, a long sequence and
// explicit M-RoPE positions; KV-cache decoding; packed rows; greedy generation.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "io/fs.h"
#include "io/tensor_store.h"
#include "io/torch_bridge.h"
#include "model/qwen2.h"
#include "model/weights.h"

using namespace ovr;
using namespace ovr::model;

namespace {

const std::string kDir = std::string(OVR_TEST_FIXTURES) + "/qwen2_5_vl_tiny";

struct Fixture {
  Qwen2ForCausalLM lm{nullptr};
  std::unique_ptr<io::ModelSource> parity;
  Fixture() {
    lm = Qwen2ForCausalLM(load_qwen2_config(kDir + "/config.json"));
    auto weights = io::open_model_source(kDir + "/model.safetensors");
    load_parameters(*lm, *weights, {"visual."});
    lm->eval();
    parity = io::open_model_source(kDir + "/parity.safetensors");
  }
  at::Tensor ref(const std::string& name) { return io::read_tensor(*parity, name); }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

// max |a - b| / max |b|: the relative error the issue bounds (1e-4 in fp32).
double rel_err(const at::Tensor& a, const at::Tensor& b) {
  const double e = (a - b).abs().max().item<double>() / b.abs().max().item<double>();
  std::printf("  relative error %.2e\n", e);
  return e;
}

// Keys allowed for one new token per row: the row's valid earlier tokens and itself.
at::Tensor decode_mask(const at::Tensor& valid_keys) {  // [B, S_k] bool, the new token included
  at::Tensor m = torch::zeros({valid_keys.size(0), 1, 1, valid_keys.size(1)});
  return m.masked_fill(valid_keys.logical_not().view({valid_keys.size(0), 1, 1, -1}), -INFINITY);
}

}  // namespace

TEST(Qwen2Config, ReadsNestedAndFlatLayoutsAndRejectsBadConfigs) {
  const Qwen2Config c = load_qwen2_config(kDir + "/config.json");  // transformers 5: text_config + rope_parameters
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.mrope_section, (std::vector<int64_t>{2, 3, 3}));
  EXPECT_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.eos_token_id, 511);
  EXPECT_EQ(c.image_token_id, 500);
  // The published flat layout with rope_scaling (as in Qwen2.5-VL-7B-Instruct's config.json).
  nlohmann::json flat = {{"model_type", "qwen2_5_vl"}, {"vocab_size", 512}, {"hidden_size", 64},
                         {"intermediate_size", 128}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
                         {"num_key_value_heads", 2}, {"rope_theta", 1000000.0},
                         {"rope_scaling", {{"type", "mrope"}, {"mrope_section", {2, 3, 3}}}}};
  const Qwen2Config f = parse_qwen2_config(flat, "flat.json");
  EXPECT_EQ(f.mrope_section, c.mrope_section);
  EXPECT_EQ(f.head_dim, c.head_dim);
  auto expect_error = [](nlohmann::json j, const std::string& phrase) {
    try {
      parse_qwen2_config(j, "bad.json");
      FAIL() << "accepted: " << j.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
    }
  };
  nlohmann::json j = flat;
  j["model_type"] = "llama";
  expect_error(j, "model_type 'llama' is not supported");
  j = flat;
  j.erase("num_hidden_layers");
  expect_error(j, "missing field 'num_hidden_layers'");
  j = flat;
  j["rope_scaling"]["mrope_section"] = {2, 3, 4};
  expect_error(j, "mrope_section sums to 9, expected head_dim / 2 = 8");
}

TEST(Qwen2Weights, NewAndPublishedNamesLoadAndMismatchesAreNamed) {
  EXPECT_EQ(published_name("model.language_model.layers.0.mlp.up_proj.weight"), "model.layers.0.mlp.up_proj.weight");
  EXPECT_EQ(published_name("model.visual.blocks.0.norm1.weight"), "visual.blocks.0.norm1.weight");
  EXPECT_EQ(published_name("lm_head.weight"), "lm_head.weight");
  Qwen2Config c = load_qwen2_config(kDir + "/config.json");
  c.intermediate_size = 96;  // a model that does not fit the stored weights
  Qwen2ForCausalLM wrong(c);
  auto weights = io::open_model_source(kDir + "/model.safetensors");
  try {
    load_parameters(*wrong, *weights, {"visual."});
    FAIL() << "shape mismatch not detected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has shape [128, 64], the model expects [96, 64]"), std::string::npos) << e.what();
  }
  Qwen2ForCausalLM lm(load_qwen2_config(kDir + "/config.json"));
  EXPECT_THROW(load_parameters(*lm, *weights, {}), Error) << "visual.* tensors are unexpected for the LM alone";
}

TEST(Qwen2Parity, PaddedBatchLogitsMatchTransformers) {
  auto& f = fixture();
  torch::NoGradGuard no_grad;
  for (const std::string side : {"right", "left"}) {
    const at::Tensor ids = f.ref("text_" + side + "_ids"), mask = f.ref("text_" + side + "_mask");
    const at::Tensor logits = f.lm->forward(ids, mask);
    const at::Tensor want = f.ref("text_" + side + "_logits");
    const at::Tensor valid = mask.to(at::kBool);
    const double err = rel_err(logits.index({valid}), want.index({valid}));
    EXPECT_LE(err, 1e-4) << side << "-padded batch";
  }
}

TEST(Qwen2Parity, LongSequenceAndExplicitMropePositionsMatchTransformers) {
  auto& f = fixture();
  torch::NoGradGuard no_grad;
  const at::Tensor ids = f.ref("long_ids");
  EXPECT_LE(rel_err(f.lm->forward(ids, torch::ones_like(ids)), f.ref("long_logits")), 1e-4);
  // Three position axes that differ: exercises mrope_section.
  const at::Tensor mids = f.ref("mrope_ids"), pos = f.ref("mrope_position_ids");
  const at::Tensor mask = causal_segment_mask(torch::zeros_like(mids), at::kFloat);
  const at::Tensor logits = f.lm->logits(f.lm->hidden_states(f.lm->embed(mids), pos, mask));
  EXPECT_LE(rel_err(logits, f.ref("mrope_logits")), 1e-4);
}

TEST(Qwen2Parity, TextPositionsOnThreeAxesEqualPlainRope) {
  auto& f = fixture();
  torch::NoGradGuard no_grad;
  const at::Tensor ids = f.ref("long_ids").narrow(1, 0, 40);
  const at::Tensor mask = causal_segment_mask(torch::zeros_like(ids), at::kFloat);
  const at::Tensor pos1d = torch::arange(40).unsqueeze(0);
  const at::Tensor mrope = f.lm->hidden_states(f.lm->embed(ids), pos1d.unsqueeze(0).expand({3, 1, 40}), mask);
  Qwen2Config plain = f.lm->config;
  plain.mrope_section.clear();  // one position axis
  const RotaryTables a = rotary_tables(pos1d, plain.head_dim, plain.rope_theta, {}, at::kFloat);
  const RotaryTables b = rotary_tables(pos1d.unsqueeze(0).expand({3, 1, 40}), plain.head_dim, plain.rope_theta,
                                       f.lm->config.mrope_section, at::kFloat);
  EXPECT_TRUE(torch::equal(a.cos, b.cos));
  EXPECT_TRUE(torch::equal(a.sin, b.sin));
  EXPECT_TRUE(mrope.isfinite().all().item<bool>());
}

TEST(Qwen2Parity, KvCacheDecodeEqualsFullForward) {
  auto& f = fixture();
  torch::NoGradGuard no_grad;
  const at::Tensor ids = f.ref("long_ids");  // [1, 200]
  const at::Tensor full = f.lm->forward(ids, torch::ones_like(ids));
  KVCache cache;
  const int64_t prefill = 150;
  at::Tensor first = ids.narrow(1, 0, prefill);
  at::Tensor logits = f.lm->logits(f.lm->hidden_states(f.lm->embed(first), torch::arange(prefill).view({1, -1}).expand({3, 1, prefill}),
                                                        causal_segment_mask(torch::zeros_like(first), at::kFloat), &cache));
  std::vector<at::Tensor> steps = {logits};
  for (int64_t t = prefill; t < 200; ++t) {
    at::Tensor tok = ids.narrow(1, t, 1);
    at::Tensor pos = torch::full({3, 1, 1}, t, at::kLong);
    at::Tensor mask = decode_mask(torch::ones({1, t + 1}, at::kBool));
    steps.push_back(f.lm->logits(f.lm->hidden_states(f.lm->embed(tok), pos, mask, &cache)));
  }
  EXPECT_EQ(cache.length(), 200);
  EXPECT_LE(rel_err(torch::cat(steps, 1), full), 1e-5);
}

TEST(Qwen2Parity, PackedRowEqualsDocumentsAlone) {
  auto& f = fixture();
  torch::NoGradGuard no_grad;
  const at::Tensor ids = f.ref("long_ids");
  const at::Tensor a = ids.narrow(1, 0, 9), b = ids.narrow(1, 20, 14), c = ids.narrow(1, 50, 5);
  const at::Tensor packed = torch::cat({a, b, c}, 1);
  const at::Tensor seg = torch::cat({torch::zeros({1, 9}, at::kLong), torch::ones({1, 14}, at::kLong),
                                     torch::full({1, 5}, 2, at::kLong)}, 1);
  const at::Tensor pos = torch::cat({torch::arange(9), torch::arange(14), torch::arange(5)}).view({1, -1}).expand({3, 1, 28});
  const at::Tensor got = f.lm->logits(f.lm->hidden_states(f.lm->embed(packed), pos, causal_segment_mask(seg, at::kFloat)));
  const at::Tensor want = torch::cat({f.lm->forward(a, torch::ones_like(a)), f.lm->forward(b, torch::ones_like(b)),
                                      f.lm->forward(c, torch::ones_like(c))}, 1);
  EXPECT_LE(rel_err(got, want), 1e-5);
}

TEST(Qwen2Parity, GreedyGenerationOfALeftPaddedBatchMatchesTransformers) {
  auto& f = fixture();
  torch::NoGradGuard no_grad;
  const at::Tensor prompt = f.ref("gen_prompt_ids"), pmask = f.ref("gen_prompt_mask"), want = f.ref("gen_output_ids");
  const int64_t eos = f.lm->config.eos_token_id, pad = f.lm->config.pad_token_id, b = prompt.size(0);
  KVCache cache;
  at::Tensor valid = pmask.to(at::kBool);
  at::Tensor positions = text_position_ids(pmask);
  at::Tensor logits = f.lm->logits(f.lm->hidden_states(
      f.lm->embed(prompt), positions, causal_segment_mask(segments_from_attention_mask(pmask), at::kFloat), &cache));
  at::Tensor next_pos = pmask.sum(1);  // the next token's position in each row
  at::Tensor out = prompt.clone();
  at::Tensor done = torch::zeros({b}, at::kBool);
  for (int step = 0; step < 16; ++step) {
    at::Tensor tok = logits.select(1, logits.size(1) - 1).argmax(-1);
    tok = torch::where(done, torch::full_like(tok, pad), tok);  // finished rows are padded, as HF does
    out = torch::cat({out, tok.unsqueeze(1)}, 1);
    done = done | tok.eq(eos);
    valid = torch::cat({valid, torch::ones({b, 1}, at::kBool)}, 1);
    at::Tensor pos = next_pos.view({1, b, 1}).expand({3, b, 1}).contiguous();
    logits = f.lm->logits(f.lm->hidden_states(f.lm->embed(tok.unsqueeze(1)), pos, decode_mask(valid), &cache));
    next_pos = next_pos + 1;
  }
  EXPECT_TRUE(torch::equal(out, want)) << out << "\nvs transformers\n" << want;
}

TEST(Qwen2Weights, SavedModelUsesPublishedNamesAndReloadsIdentically) {
  auto& f = fixture();
  const std::string dir = ::testing::TempDir() + "ovr_test_qwen2_save";
  std::system(("rm -rf " + dir).c_str());
  save_parameters(*f.lm, dir, io::read_text_file(kDir + "/config.json"));
  auto saved = io::open_model_source(dir);
  for (const auto& t : saved->tensors()) {
    EXPECT_EQ(t.name.find("language_model"), std::string::npos) << t.name;
    EXPECT_TRUE(t.name.rfind("model.", 0) == 0 || t.name == "lm_head.weight") << t.name;
  }
  Qwen2ForCausalLM again = load_qwen2_lm(dir);
  torch::NoGradGuard no_grad;
  const at::Tensor ids = f.ref("long_ids");
  EXPECT_TRUE(torch::equal(again->forward(ids, torch::ones_like(ids)), f.lm->forward(ids, torch::ones_like(ids))));
}
