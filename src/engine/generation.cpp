#include "engine/generation.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <limits>

#include "common/error.h"
#include "engine/paged_kv_cache.h"

namespace ovr::engine {

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// One sample being decoded.
struct Active {
  size_t request;
  CachedSequence seq;
  SequenceRng rng;
  int64_t next_pos;  // position of `pending`
  int64_t pending;   // the last sampled token, not yet in the cache
  int64_t max_new;
  GeneratedSample out;
};

// The LayerCache of one decode step: every sequence feeds one token. Past keys/values are
// gathered from the paged cache, padded to the longest sequence (the mask hides the padding),
// and each sequence's new key/value goes back to its own slot.
class DecodeStep : public model::LayerCache {
 public:
  DecodeStep(PagedKVCache& cache, std::vector<CachedSequence*> seqs, int64_t max_len)
      : cache_(cache), seqs_(std::move(seqs)), max_len_(max_len) {}
  void past(size_t layer, at::Tensor* k, at::Tensor* v) override { cache_.gather(seqs_, int64_t(layer), max_len_, k, v); }
  void update(size_t layer, const at::Tensor& k, const at::Tensor& v) override {
    cache_.write_one(seqs_, int64_t(layer), k.select(2, max_len_), v.select(2, max_len_));
  }

 private:
  PagedKVCache& cache_;
  std::vector<CachedSequence*> seqs_;
  int64_t max_len_;
};

}  // namespace

GenerationEngine::GenerationEngine(model::Qwen2ForCausalLM lm, EngineOptions options) : lm_(std::move(lm)), opt_(std::move(options)) {
  validate(opt_.sampling);
  if (opt_.max_batch <= 0) throw Error("generation: max_batch must be positive");
  if (!opt_.stop_strings.empty() && !opt_.detokenize) throw Error("generation: stop strings need a detokenizer");
  for (int64_t id : opt_.suppressed_ids)
    if (id < 0 || id >= lm_->config.vocab_size) throw Error("generation: suppressed token " + std::to_string(id) + " is outside the vocabulary");
  if (!opt_.suppressed_ids.empty()) suppressed_ = torch::tensor(opt_.suppressed_ids, at::kLong);
}

std::vector<GeneratedSample> GenerationEngine::generate(const std::vector<GenerationRequest>& requests,
                                                        const std::function<void(const GeneratedSample&)>& on_finish) {
  torch::NoGradGuard no_grad;
  const auto& cfg = lm_->config;
  // The model decides where and in what type everything runs (fp32 on CPU, bf16 on CUDA).
  const at::ScalarType dtype = lm_->model->embed_tokens->weight.scalar_type();
  const at::Device device = lm_->model->embed_tokens->weight.device();
  auto on_device = [&](const std::vector<int64_t>& v) { return torch::tensor(v).to(device); };
  PagedKVCache cache(cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.head_dim, opt_.block_size, opt_.kv_cache_tokens,
                     dtype, device);
  const int64_t bs = opt_.block_size;

  std::vector<size_t> first_result(requests.size() + 1, 0);
  for (size_t r = 0; r < requests.size(); ++r) {
    if (requests[r].prompt_ids.empty() && !requests[r].inputs_embeds.defined())
      throw Error("generation: request " + std::to_string(requests[r].prompt_id) + " has an empty prompt");
    if (requests[r].n < 1) throw Error("generation: n must be >= 1");
    first_result[r + 1] = first_result[r] + size_t(requests[r].n);
  }
  std::vector<GeneratedSample> results(first_result.back());

  // KV blocks promised to admitted requests, so that a running sequence never finds the cache
  // full: the prompt's blocks once, plus each sample's worst case beyond the shared full blocks.
  auto prompt_len = [&](const GenerationRequest& q) {
    return q.inputs_embeds.defined() ? q.inputs_embeds.size(0) : int64_t(q.prompt_ids.size());
  };
  auto max_new_of = [&](const GenerationRequest& q) { return q.max_new_tokens >= 0 ? q.max_new_tokens : opt_.max_new_tokens; };
  auto sample_blocks = [&](const GenerationRequest& q) {
    const int64_t p = prompt_len(q);
    return PagedKVCache::blocks_for(p + max_new_of(q), bs) - p / bs;
  };
  std::vector<int> samples_left(requests.size(), 0);
  int64_t committed = 0;

  const size_t max_stop = [&] {
    size_t m = 0;
    for (const auto& s : opt_.stop_strings) m = std::max(m, s.size());
    return m;
  }();
  auto finished_reason = [&](const Active& a) -> const char* {
    const int64_t t = a.out.tokens.back();
    if (std::find(opt_.eos_ids.begin(), opt_.eos_ids.end(), t) != opt_.eos_ids.end()) return "eos";
    if (max_stop > 0) {  // stop strings: look at the text of the last few tokens only
      const size_t window = std::min(a.out.tokens.size(), max_stop + 8);
      const std::string tail = opt_.detokenize(std::vector<int64_t>(a.out.tokens.end() - long(window), a.out.tokens.end()));
      for (const auto& s : opt_.stop_strings)
        if (!s.empty() && tail.find(s) != std::string::npos) return "stop";
    }
    if (int64_t(a.out.tokens.size()) >= a.max_new) return "length";
    return nullptr;
  };

  std::vector<Active> running;
  auto finish = [&](Active& a, const char* reason) {
    a.out.finish_reason = reason;
    cache.release(a.seq);
    const auto& q = requests[a.request];
    committed -= sample_blocks(q);
    if (--samples_left[a.request] == 0) committed -= PagedKVCache::blocks_for(prompt_len(q), bs);
    if (on_finish) on_finish(a.out);
    results[first_result[a.request] + size_t(a.out.sample_index)] = std::move(a.out);
  };
  // Removes the finished samples among running[from, end), freeing their slots and KV blocks.
  auto retire_finished = [&](size_t from) {
    for (size_t i = from; i < running.size();) {
      if (const char* reason = finished_reason(running[i])) {
        finish(running[i], reason);
        running.erase(running.begin() + long(i));
      } else {
        ++i;
      }
    }
  };
  // Samples the next token of each row of `logits` [rows, vocab] for the given samples.
  auto sample_rows = [&](const at::Tensor& logits, const std::vector<Active*>& rows) {
    const double t0 = now();
    std::vector<SequenceRng*> rngs;
    for (Active* a : rows) rngs.push_back(&a->rng);
    const std::vector<SampledToken> picked = sample_tokens(logits, opt_.sampling, rngs, suppressed_);
    for (size_t i = 0; i < rows.size(); ++i) {
      rows[i]->out.tokens.push_back(picked[i].token);
      rows[i]->out.logprobs.push_back(picked[i].logprob);
      rows[i]->pending = picked[i].token;
    }
    stats_.sampling_seconds += now() - t0;
  };

  size_t next_request = 0;
  while (next_request < requests.size() || !running.empty()) {
    // Admit waiting prompts while slots and KV budget allow: prefill once, fork n samples.
    while (next_request < requests.size()) {
      const GenerationRequest& q = requests[next_request];
      const int64_t need = PagedKVCache::blocks_for(prompt_len(q), bs) + q.n * sample_blocks(q);
      if (need > cache.max_blocks())
        throw Error("generation: request " + std::to_string(q.prompt_id) + " needs " + std::to_string(need * bs) +
                    " KV tokens, more than the cache budget of " + std::to_string(cache.max_blocks() * bs));
      // A prompt with more samples than max_batch still runs, alone.
      const bool fits_batch = running.empty() || int64_t(running.size()) + q.n <= opt_.max_batch;
      if (!fits_batch || committed + need > cache.max_blocks()) break;
      committed += need;
      samples_left[next_request] = q.n;
      const double t0 = now();
      const int64_t p = prompt_len(q);
      at::Tensor embeds = q.inputs_embeds.defined() ? q.inputs_embeds.unsqueeze(0).to(device, dtype)
                                                    : lm_->embed(on_device(q.prompt_ids).view({1, -1}));
      at::Tensor pos = q.positions.defined() ? q.positions.view({3, 1, p}).to(device)
                                             : torch::arange(p).view({1, 1, p}).expand({3, 1, p}).to(device);
      model::KVCache dense;
      at::Tensor hidden = lm_->hidden_states(
          embeds, pos, model::causal_segment_mask(torch::zeros({1, p}, at::kLong).to(device), dtype), &dense);
      CachedSequence base;
      cache.prepare_append(base, p);
      for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) cache.write(base, l, 0, dense.k[size_t(l)][0], dense.v[size_t(l)][0]);
      base.length = p;
      at::Tensor last = lm_->logits(hidden.select(1, p - 1));  // [1, vocab]
      stats_.prefill_tokens += p;
      stats_.prefill_seconds += now() - t0;
      const int64_t next_pos = pos.max().item<int64_t>() + 1;
      std::vector<Active*> fresh;
      for (int s = 0; s < q.n; ++s) {
        Active a{next_request, s + 1 < q.n ? cache.fork(base) : base, SequenceRng(opt_.seed, q.prompt_id, s), next_pos, -1,
                 max_new_of(q), GeneratedSample{}};
        a.out.prompt_id = q.prompt_id;
        a.out.sample_index = s;
        running.push_back(std::move(a));
      }
      for (int s = 0; s < q.n; ++s) fresh.push_back(&running[running.size() - size_t(q.n) + size_t(s)]);
      sample_rows(last.expand({q.n, last.size(1)}), fresh);
      ++next_request;
      // A sample may be done after its first token.
      retire_finished(running.size() - size_t(q.n));
    }
    if (running.empty()) continue;

    // One decode step for every running sample.
    const double t0 = now();
    const int64_t b = int64_t(running.size());
    stats_.peak_batch = std::max(stats_.peak_batch, b);
    std::vector<CachedSequence*> seqs;
    std::vector<int64_t> ids, positions;
    int64_t max_len = 0;
    for (auto& a : running) {
      cache.prepare_append(a.seq, 1);
      seqs.push_back(&a.seq);
      ids.push_back(a.pending);
      positions.push_back(a.next_pos);
      max_len = std::max(max_len, a.seq.length);
    }
    // Keys: each row's own past, then (at index max_len) its new token. Built on the host, moved once.
    std::vector<float> host_mask(size_t(b * (max_len + 1)), -INFINITY);
    for (int64_t i = 0; i < b; ++i) {
      std::fill_n(host_mask.begin() + i * (max_len + 1), seqs[size_t(i)]->length, 0.0f);
      host_mask[size_t(i * (max_len + 1) + max_len)] = 0.0f;
    }
    at::Tensor mask = torch::from_blob(host_mask.data(), {b, 1, 1, max_len + 1}, at::kFloat).to(device, dtype);
    DecodeStep step(cache, seqs, max_len);
    at::Tensor pos = on_device(positions).view({1, b, 1}).expand({3, b, 1});
    at::Tensor hidden = lm_->hidden_states(lm_->embed(on_device(ids).view({b, 1})), pos, mask, &step);
    at::Tensor logits = lm_->logits(hidden.select(1, 0));  // [b, vocab]
    std::vector<Active*> rows;
    for (auto& a : running) {
      ++a.seq.length;
      ++a.next_pos;
      rows.push_back(&a);
    }
    sample_rows(logits, rows);
    stats_.decode_tokens += b;
    ++stats_.decode_steps;
    stats_.peak_kv_bytes = std::max(stats_.peak_kv_bytes, cache.allocated_bytes());
    stats_.decode_seconds += now() - t0;
    retire_finished(0);
  }
  return results;
}

}  // namespace ovr::engine
