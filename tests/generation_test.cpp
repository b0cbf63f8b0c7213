// The generation engine: parity with transformers' greedy generate, reproducible sampling
// whatever the batch, continuous batching, shared prefill, stop conditions, log-probabilities.
#include <gtest/gtest.h>

#include <cmath>
#include <torch/torch.h>

#include <map>
#include <random>
#include <set>

#include "common/error.h"
#include "io/tensor_store.h"
#include "io/torch_bridge.h"
#include "model/qwen2.h"
#include "model/weights.h"
#include "engine/generation.h"

using namespace ovr;
using namespace ovr::engine;

namespace {

const std::string kDir = std::string(OVR_TEST_FIXTURES) + "/qwen2_5_vl_tiny";

model::Qwen2ForCausalLM tiny_lm() {
  static model::Qwen2ForCausalLM lm = [] {
    model::Qwen2ForCausalLM m(model::load_qwen2_config(kDir + "/config.json"));
    auto w = io::open_model_source(kDir + "/model.safetensors");
    model::load_parameters(*m, *w, {"visual."});
    m->eval();
    return m;
  }();
  return lm;
}

std::vector<GenerationRequest> some_requests(int count, int n, uint32_t seed) {
  std::vector<GenerationRequest> out;
  torch::manual_seed(seed);
  for (int i = 0; i < count; ++i) {
    GenerationRequest r;
    r.prompt_id = 100 + i;
    const int64_t len = 3 + (i * 7) % 11;
    at::Tensor ids = torch::randint(0, 500, {len}, at::kLong);
    for (int64_t j = 0; j < len; ++j) r.prompt_ids.push_back(ids[j].item<int64_t>());
    r.n = n;
    r.max_new_tokens = 5 + (i * 5) % 13;
    out.push_back(r);
  }
  return out;
}

EngineOptions sampling_options(int64_t max_batch) {
  EngineOptions o;
  o.max_batch = max_batch;
  o.block_size = 4;
  o.seed = 7;
  o.sampling.temperature = 0.9;
  o.sampling.top_p = 0.95;
  o.sampling.top_k = 50;
  o.eos_ids = {511};
  return o;
}

std::map<std::pair<int64_t, int>, std::vector<int64_t>> by_key(const std::vector<GeneratedSample>& v) {
  std::map<std::pair<int64_t, int>, std::vector<int64_t>> m;
  for (const auto& s : v) m[{s.prompt_id, s.sample_index}] = s.tokens;
  return m;
}

}  // namespace

TEST(Generation, GreedyMatchesTransformersGenerate) {
  auto parity = io::open_model_source(kDir + "/parity.safetensors");
  const at::Tensor prompts = io::read_tensor(*parity, "gen_prompt_ids"), mask = io::read_tensor(*parity, "gen_prompt_mask");
  const at::Tensor want = io::read_tensor(*parity, "gen_output_ids");
  EngineOptions o;
  o.sampling.greedy = true;
  o.eos_ids = {511};
  o.max_new_tokens = 16;
  o.block_size = 4;  // several blocks per sequence
  GenerationEngine generator(tiny_lm(), o);
  std::vector<GenerationRequest> reqs;
  for (int64_t r = 0; r < prompts.size(0); ++r) {
    GenerationRequest q;
    q.prompt_id = r;
    for (int64_t j = 0; j < prompts.size(1); ++j)
      if (mask[r][j].item<int64_t>()) q.prompt_ids.push_back(prompts[r][j].item<int64_t>());  // HF's left padding removed
    reqs.push_back(q);
  }
  const auto out = generator.generate(reqs);
  for (size_t r = 0; r < out.size(); ++r) {
    std::vector<int64_t> hf;
    for (int64_t j = prompts.size(1); j < want.size(1); ++j) {
      hf.push_back(want[long(r)][j].item<int64_t>());
      if (hf.back() == 511) break;  // HF pads after EOS
    }
    EXPECT_EQ(out[r].tokens, hf) << "prompt " << r;
    EXPECT_EQ(out[r].finish_reason, hf.back() == 511 ? "eos" : "length");
  }
}

TEST(Generation, SamplesAreTheSameWhateverTheBatchAndOrder) {
  const auto reqs = some_requests(9, 3, 1);
  const auto alone = by_key(GenerationEngine(tiny_lm(), sampling_options(1)).generate(reqs));
  const auto batched = by_key(GenerationEngine(tiny_lm(), sampling_options(64)).generate(reqs));
  auto reversed = reqs;
  std::reverse(reversed.begin(), reversed.end());
  const auto shuffled = by_key(GenerationEngine(tiny_lm(), sampling_options(5)).generate(reversed));
  EXPECT_EQ(alone, batched);
  EXPECT_EQ(alone, shuffled);
  // Different samples of one prompt differ (their streams are distinct).
  EXPECT_NE((alone.at({100, 0})), (alone.at({100, 1})));
}

TEST(Generation, ContinuousBatchingRefillsSlotsAndSharesPrefill) {
  const auto reqs = some_requests(7, 2, 2);
  GenerationEngine generator(tiny_lm(), sampling_options(4));
  std::vector<std::pair<int64_t, int>> finished;
  const auto out = generator.generate(reqs, [&](const GeneratedSample& s) { finished.push_back({s.prompt_id, s.sample_index}); });
  ASSERT_EQ(out.size(), 14u);
  EXPECT_EQ(finished.size(), 14u);
  EXPECT_LE(generator.stats().peak_batch, 4);
  int64_t prompt_tokens = 0;
  for (const auto& r : reqs) prompt_tokens += int64_t(r.prompt_ids.size());
  EXPECT_EQ(generator.stats().prefill_tokens, prompt_tokens) << "each prompt is prefilled once for its samples";
  for (size_t i = 0; i < out.size(); ++i) {
    const auto& r = reqs[i / 2];
    EXPECT_EQ(out[i].prompt_id, r.prompt_id);
    EXPECT_EQ(out[i].sample_index, int(i % 2));
    EXPECT_TRUE(out[i].finish_reason == "eos" || int64_t(out[i].tokens.size()) == r.max_new_tokens) << out[i].finish_reason;
    EXPECT_EQ(out[i].tokens.size(), out[i].logprobs.size());
  }
}

TEST(Generation, LogprobsAreThoseOfTheModelAtTheSampledPositions) {
  // Temperature 1, no truncation: each logprob must equal log_softmax of a full forward pass.
  EngineOptions o;
  o.seed = 3;
  o.block_size = 4;
  o.max_new_tokens = 12;
  auto reqs = some_requests(3, 2, 5);
  for (auto& r : reqs) r.max_new_tokens = 12;
  const auto out = GenerationEngine(tiny_lm(), o).generate(reqs);
  torch::NoGradGuard no_grad;
  auto lm = tiny_lm();
  for (const auto& s : out) {
    const auto& prompt = reqs[size_t(s.prompt_id - 100)].prompt_ids;
    std::vector<int64_t> all = prompt;
    all.insert(all.end(), s.tokens.begin(), s.tokens.end());
    at::Tensor ids = torch::tensor(all).view({1, -1});
    at::Tensor logp = torch::log_softmax(lm->forward(ids, torch::ones_like(ids)), -1)[0];
    for (size_t t = 0; t < s.tokens.size(); ++t) {
      const float want = logp[long(prompt.size() + t - 1)][s.tokens[t]].item<float>();
      EXPECT_NEAR(s.logprobs[t], want, 1e-4) << "prompt " << s.prompt_id << " sample " << s.sample_index << " token " << t;
    }
  }
}

TEST(Generation, StopStringsAndLengthEndSequences) {
  EngineOptions o;
  o.sampling.greedy = true;
  o.max_new_tokens = 10;
  o.detokenize = [](const std::vector<int64_t>& ids) {
    std::string s;
    for (int64_t i : ids) s += "<" + std::to_string(i) + ">";
    return s;
  };
  auto reqs = some_requests(1, 1, 9);
  reqs[0].max_new_tokens = -1;  // the engine default (10)
  const auto free_run = GenerationEngine(tiny_lm(), o).generate(reqs);
  ASSERT_EQ(free_run[0].tokens.size(), 10u);
  EXPECT_EQ(free_run[0].finish_reason, "length");
  o.stop_strings = {"<" + std::to_string(free_run[0].tokens[3]) + ">"};
  const auto stopped = GenerationEngine(tiny_lm(), o).generate(reqs);
  // It stops at the first occurrence of that token (which may come earlier than index 3).
  const auto first = std::find(free_run[0].tokens.begin(), free_run[0].tokens.end(), free_run[0].tokens[3]);
  EXPECT_EQ(stopped[0].tokens, std::vector<int64_t>(free_run[0].tokens.begin(), first + 1));
  EXPECT_EQ(stopped[0].finish_reason, "stop");
}

TEST(Generation, SuppressedTokensAreNeverGenerated) {
  // The tokens a free greedy run and a sampled run produce most are suppressed in a second run:
  // none of them appears, and the log-probs stay those of a proper distribution.
  for (const bool greedy : {true, false}) {
    EngineOptions o = sampling_options(8);
    o.sampling.greedy = greedy;
    o.max_new_tokens = 12;
    const auto reqs = some_requests(3, 4, 5);
    std::map<int64_t, int> counts;
    for (const auto& s : GenerationEngine(tiny_lm(), o).generate(reqs))
      for (int64_t t : s.tokens) ++counts[t];
    std::vector<std::pair<int, int64_t>> by_count;
    for (const auto& [t, c] : counts) by_count.push_back({c, t});
    std::sort(by_count.rbegin(), by_count.rend());
    ASSERT_GE(by_count.size(), 2u);
    o.suppressed_ids = {by_count[0].second, by_count[1].second};
    for (const auto& s : GenerationEngine(tiny_lm(), o).generate(reqs)) {
      for (int64_t t : s.tokens) EXPECT_TRUE(t != o.suppressed_ids[0] && t != o.suppressed_ids[1]) << t;
      for (float lp : s.logprobs) EXPECT_TRUE(std::isfinite(lp) && lp <= 0.0f);
    }
  }
  EngineOptions bad;
  bad.suppressed_ids = {100000};
  EXPECT_THROW(GenerationEngine(tiny_lm(), bad), Error);
}

// A KV budget far below what the batch would hold at its longest: the newest samples are
// preempted (blocks freed) and later recomputed, many times, and every sample still comes out as
// with a generous budget -- the same tokens (each sample's random stream is its own) and the same
// log-probs up to the rounding of a prefill against a decode step.
TEST(Generation, ATightKvBudgetPreemptsAndChangesNoSample) {
  for (const bool greedy : {false, true}) {
    auto reqs = some_requests(9, 3, 4);
    for (auto& r : reqs) r.max_new_tokens = 40;
    EngineOptions roomy = sampling_options(16), tight = sampling_options(16);
    roomy.sampling.greedy = tight.sampling.greedy = greedy;
    roomy.eos_ids = tight.eos_ids = {};  // every sample runs to its limit: the pool must fill
    tight.kv_cache_tokens = 4 * 18;       // 18 blocks of 4: one sample at its longest (14 + 40 tokens) and a little
    GenerationEngine a(tiny_lm(), roomy), b(tiny_lm(), tight);
    const auto want = a.generate(reqs), got = b.generate(reqs);
    EXPECT_EQ(a.stats().preemptions, 0);
    EXPECT_GT(b.stats().preemptions, 10) << "the budget must force preemptions";
    ASSERT_EQ(want.size(), got.size());
    double worst = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(want[i].tokens, got[i].tokens) << "sample " << i << (greedy ? " (greedy)" : " (sampled)");
      ASSERT_EQ(want[i].logprobs.size(), got[i].logprobs.size());
      for (size_t t = 0; t < want[i].logprobs.size(); ++t)
        worst = std::max(worst, double(std::abs(want[i].logprobs[t] - got[i].logprobs[t])));
    }
    EXPECT_LT(worst, 1e-5) << "log-probs after recomputation";
    std::printf("%s: %lld preemptions, largest log-prob difference %.1e, peak KV %lld vs %lld bytes\n",
                greedy ? "greedy" : "sampled", (long long)b.stats().preemptions, worst, (long long)b.stats().peak_kv_bytes,
                (long long)a.stats().peak_kv_bytes);
    EXPECT_LE(b.stats().peak_kv_bytes, a.stats().peak_kv_bytes);
  }
}

TEST(Generation, KvCacheBudgetTooSmallForOnePromptIsAClearError) {
  EngineOptions o;
  o.kv_cache_tokens = 16;
  o.max_new_tokens = 100;
  try {
    GenerationEngine(tiny_lm(), o).generate(some_requests(1, 1, 1));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("more than the cache budget"), std::string::npos) << e.what();
  }
}

TEST(Sampling, DrawsFollowTheTruncatedDistribution) {
  // logits of 4 tokens: probabilities 0.5, 0.25, 0.15, 0.1. Each row of the batch is one draw
  // from its own stream (the kernel's exact kept-set and tie rules are checked against a sorted
  // reference in tests/adamw_sampling_gae_kernel_test.cpp).
  const std::vector<double> p = {0.5, 0.25, 0.15, 0.1};
  const int64_t draws = 20000;
  at::Tensor logits = torch::tensor(std::vector<double>{std::log(0.5), std::log(0.25), std::log(0.15), std::log(0.1)})
                          .to(at::kFloat)
                          .expand({draws, 4});
  auto sample = [&](const SamplingParams& sp, const at::Tensor& suppressed = {}) {
    std::vector<SequenceRng> rngs;
    for (int64_t i = 0; i < draws; ++i) rngs.emplace_back(1, 2, i);
    std::vector<SequenceRng*> ptrs;
    for (auto& r : rngs) ptrs.push_back(&r);
    return sample_tokens(logits, sp, ptrs, suppressed);
  };
  auto freq = [&](const std::vector<SampledToken>& picked) {
    std::vector<double> f(4, 0.0);
    for (const auto& s : picked) f[size_t(s.token)] += 1.0 / double(draws);
    return f;
  };
  const auto full = freq(sample({}));
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(full[size_t(i)], p[size_t(i)], 0.015);
  SamplingParams top2;
  top2.top_k = 2;
  const auto k2 = freq(sample(top2));
  EXPECT_NEAR(k2[0], 2.0 / 3, 0.015);
  EXPECT_EQ(k2[2] + k2[3], 0.0);
  SamplingParams nucleus;
  nucleus.top_p = 0.8;  // 0.5 + 0.25 < 0.8 <= 0.5 + 0.25 + 0.15: three tokens kept
  const auto picked = sample(nucleus);
  const auto n3 = freq(picked);
  EXPECT_NEAR(n3[2], 0.15 / 0.9, 0.015);
  EXPECT_EQ(n3[3], 0.0);
  for (int64_t i = 0; i < 10; ++i)
    EXPECT_NEAR(picked[size_t(i)].logprob, std::log(p[size_t(picked[size_t(i)].token)] / 0.9), 1e-5)
        << "logprob of the renormalised distribution";
  SamplingParams greedy;
  greedy.greedy = true;
  const auto g = sample(greedy, torch::tensor({int64_t(0)}));  // the most likely token suppressed
  EXPECT_EQ(g[0].token, 1);
  SamplingParams bad;
  bad.temperature = 0;
  EXPECT_THROW(validate(bad), Error);
}
