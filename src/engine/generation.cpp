#include "engine/generation.h"

#include <torch/torch.h>

#include <algorithm>
#include <deque>
#include <limits>

#include "common/clock.h"
#include "common/error.h"
#include "engine/paged_kv_cache.h"

namespace ovr::engine {

namespace {

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

// One generate() call: requests wait, are admitted (prefilled once, forked into n samples) while
// batch slots and the KV budget allow, decode one token per step together, and retire as they finish.
class GenerationEngine::Run {
 public:
  Run(GenerationEngine& e, const std::vector<GenerationRequest>& requests,
      const std::function<void(const GeneratedSample&)>& on_finish)
      : e_(e), cfg_(e.lm_->config), requests_(requests), on_finish_(on_finish),
        // The model decides where and in what type everything runs (fp32 on CPU, bf16 on CUDA).
        dtype_(e.lm_->model->embed_tokens->weight.scalar_type()), device_(e.lm_->model->embed_tokens->weight.device()),
        cache_(cfg_.num_hidden_layers, cfg_.num_key_value_heads, cfg_.head_dim, e.opt_.block_size, e.opt_.kv_cache_tokens,
               dtype_, device_),
        bs_(e.opt_.block_size), first_result_(requests.size() + 1, 0) {
    for (size_t r = 0; r < requests.size(); ++r) {
      if (requests[r].prompt_ids.empty() && !requests[r].inputs_embeds.defined())
        throw Error("generation: request " + std::to_string(requests[r].prompt_id) + " has an empty prompt");
      if (requests[r].n < 1) throw Error("generation: n must be >= 1");
      first_result_[r + 1] = first_result_[r] + size_t(requests[r].n);
    }
    results_.resize(first_result_.back());
    for (const auto& s : e.opt_.stop_strings) max_stop_ = std::max(max_stop_, s.size());
  }

  bool done() const { return next_request_ == requests_.size() && running_.empty() && preempted_.empty(); }

  // Admits by what sequences hold now, not by their worst case: preempted samples first (their
  // keys/values recomputed), then waiting requests, while batch slots allow and the free blocks
  // cover what admission takes plus a watermark (room for the running samples to grow a while).
  void admit() {
    const int64_t watermark = std::max<int64_t>(1, cache_.max_blocks() / 100);
    while (!preempted_.empty()) {
      Active& a = preempted_.front();
      const int64_t held = PagedKVCache::blocks_for(prompt_len(requests_[a.request]) + int64_t(a.out.tokens.size()), bs_);
      const bool fits_batch = running_.empty() || int64_t(running_.size()) < e_.opt_.max_batch;
      if (!fits_batch || (!running_.empty() && held + watermark > cache_.free_blocks())) return;
      resume(std::move(a));
      preempted_.pop_front();
    }
    while (next_request_ < requests_.size()) {
      const GenerationRequest& q = requests_[next_request_];
      const int64_t need = PagedKVCache::min_request_blocks(prompt_len(q), max_new_of(q), q.n, bs_);
      if (need > cache_.max_blocks())
        throw Error("generation: request " + std::to_string(q.prompt_id) + " needs " + std::to_string(need * bs_) +
                    " KV tokens, more than the cache budget of " + std::to_string(cache_.max_blocks() * bs_));
      // A prompt with more samples than max_batch still runs, alone.
      const bool fits_batch = running_.empty() || int64_t(running_.size()) + q.n <= e_.opt_.max_batch;
      const int64_t takes = PagedKVCache::blocks_for(prompt_len(q), bs_) + q.n;
      if (!fits_batch || (!running_.empty() && takes + watermark > cache_.free_blocks())) return;
      prefill_and_fork(q);
      ++next_request_;
      retire_finished(running_.size() - size_t(q.n));  // a sample may be done after its first token
    }
  }

  // One decode step for every running sample.
  void decode_step() {
    if (running_.empty()) return;
    const double t0 = monotonic_seconds();
    EngineStats& st = e_.stats_;
    std::vector<CachedSequence*> seqs;
    std::vector<int64_t> ids, positions;
    int64_t max_len = 0;
    make_room();
    const int64_t b = int64_t(running_.size());
    st.peak_batch = std::max(st.peak_batch, b);
    for (auto& a : running_) {
      cache_.prepare_append(a.seq, 1);
      seqs.push_back(&a.seq);
      ids.push_back(a.pending);
      positions.push_back(a.next_pos);
      max_len = std::max(max_len, a.seq.length);
    }
    // Keys: each row's own past, then (at index max_len) its new token. Built on the device from
    // the rows' lengths: b integers cross to the device per step, not a b x context mask (48 MB
    // per step at 256 rows of 48k tokens).
    std::vector<int64_t> lengths;
    for (const CachedSequence* s : seqs) lengths.push_back(s->length);
    const at::Tensor cols = torch::arange(max_len + 1, at::TensorOptions().dtype(at::kLong).device(device_)).view({1, -1});
    const at::Tensor keep = cols.lt(on_device(lengths).view({-1, 1})).logical_or(cols.eq(max_len));
    at::Tensor mask = torch::zeros({b, max_len + 1}, at::TensorOptions().dtype(dtype_).device(device_))
                          .masked_fill(keep.logical_not(), -INFINITY)
                          .view({b, 1, 1, max_len + 1});
    DecodeStep step(cache_, seqs, max_len);
    at::Tensor pos = on_device(positions).view({1, b, 1}).expand({3, b, 1});
    at::Tensor hidden = e_.lm_->hidden_states(e_.lm_->embed(on_device(ids).view({b, 1})), pos, mask, &step);
    at::Tensor logits = e_.lm_->logits(hidden.select(1, 0));  // [b, vocab]
    std::vector<Active*> rows;
    for (auto& a : running_) {
      ++a.seq.length;
      ++a.next_pos;
      rows.push_back(&a);
    }
    sample_rows(logits, rows);
    st.decode_tokens += b;
    ++st.decode_steps;
    st.peak_kv_bytes = std::max(st.peak_kv_bytes, cache_.allocated_bytes());
    st.peak_kv_blocks = std::max(st.peak_kv_blocks, cache_.blocks_in_use());
    st.kv_budget_blocks = cache_.max_blocks();
    st.decode_seconds += monotonic_seconds() - t0;
    retire_finished(0);
  }

  std::vector<GeneratedSample> take_results() { return std::move(results_); }

 private:
  at::Tensor on_device(const std::vector<int64_t>& v) const { return torch::tensor(v).to(device_); }
  int64_t prompt_len(const GenerationRequest& q) const {
    return q.inputs_embeds.defined() ? q.inputs_embeds.size(0) : int64_t(q.prompt_ids.size());
  }
  int64_t max_new_of(const GenerationRequest& q) const {
    return q.max_new_tokens >= 0 ? q.max_new_tokens : e_.opt_.max_new_tokens;
  }
  // The prompt's embeddings [1, p, hidden] and M-RoPE positions [3, 1, p] on the device.
  at::Tensor prompt_embeds(const GenerationRequest& q) const {
    return q.inputs_embeds.defined() ? q.inputs_embeds.unsqueeze(0).to(device_, dtype_)
                                     : e_.lm_->embed(on_device(q.prompt_ids).view({1, -1}));
  }
  at::Tensor prompt_positions(const GenerationRequest& q) const {
    const int64_t p = prompt_len(q);
    return q.positions.defined() ? q.positions.view({3, 1, p}).to(device_)
                                 : torch::arange(p).view({1, 1, p}).expand({3, 1, p}).to(device_);
  }

  // Tokens through the model at once, their keys/values into `seq` (empty before); the hidden
  // states [1, S, hidden].
  at::Tensor prefill(const at::Tensor& embeds, const at::Tensor& pos, CachedSequence& seq) {
    const double t0 = monotonic_seconds();
    const int64_t s = embeds.size(1);
    model::KVCache dense;
    at::Tensor hidden = e_.lm_->hidden_states(
        embeds, pos, model::causal_segment_mask(torch::zeros({1, s}, at::kLong).to(device_), dtype_), &dense);
    cache_.prepare_append(seq, s);
    for (int64_t l = 0; l < cfg_.num_hidden_layers; ++l) cache_.write(seq, l, 0, dense.k[size_t(l)][0], dense.v[size_t(l)][0]);
    seq.length = s;
    e_.stats_.prefill_tokens += s;
    e_.stats_.prefill_seconds += monotonic_seconds() - t0;
    return hidden;
  }

  // Every running sample may take one new block this step (a new block, or a private copy of a
  // shared last block): when the pool cannot give them all, the newest samples are preempted --
  // their blocks freed, their tokens, log-probs and random stream kept -- until it can. They
  // resume later by recomputing their keys/values (vLLM's preemption by recompute), and produce
  // the tokens they would have produced uninterrupted: their random streams are their own.
  void make_room() {
    for (;;) {
      int64_t need = 0;
      for (const Active& a : running_) need += cache_.blocks_needed(a.seq, 1);
      if (need <= cache_.free_blocks() || running_.size() == 1) return;
      Active& newest = running_.back();
      cache_.release(newest.seq);
      newest.seq = CachedSequence{};
      preempted_.push_front(std::move(newest));  // the front resumes first: admission order is kept
      running_.pop_back();
      ++e_.stats_.preemptions;
    }
  }

  // A preempted sample back in the batch: its prompt and the tokens it generated before its
  // pending one recomputed into a private sequence, at the positions they had.
  void resume(Active a) {
    const GenerationRequest& q = requests_[a.request];
    const int64_t g = int64_t(a.out.tokens.size()) - 1;  // generated and cached before the preemption
    at::Tensor embeds = prompt_embeds(q), pos = prompt_positions(q);
    if (g > 0) {
      const std::vector<int64_t> generated(a.out.tokens.begin(), a.out.tokens.end() - 1);
      embeds = torch::cat({embeds, e_.lm_->embed(on_device(generated).view({1, g}))}, 1);
      const at::Tensor later = (torch::arange(g) + (a.next_pos - g)).to(device_).view({1, 1, g}).expand({3, 1, g});
      pos = torch::cat({pos, later}, 2);
    }
    prefill(embeds, pos, a.seq);
    running_.push_back(std::move(a));
  }

  // The prompt through the model once (its keys/values into the paged cache), then n samples
  // that share its blocks, each with its first token sampled from the prompt's last logits.
  void prefill_and_fork(const GenerationRequest& q) {
    const int64_t p = prompt_len(q);
    const at::Tensor pos = prompt_positions(q);
    CachedSequence base;
    const at::Tensor hidden = prefill(prompt_embeds(q), pos, base);
    at::Tensor last = e_.lm_->logits(hidden.select(1, p - 1));  // [1, vocab]
    const int64_t next_pos = pos.max().item<int64_t>() + 1;
    for (int s = 0; s < q.n; ++s) {
      Active a{next_request_, s + 1 < q.n ? cache_.fork(base) : base, SequenceRng(e_.opt_.seed, q.prompt_id, s), next_pos,
               -1, max_new_of(q), GeneratedSample{}};
      a.out.prompt_id = q.prompt_id;
      a.out.sample_index = s;
      running_.push_back(std::move(a));
    }
    std::vector<Active*> fresh;
    for (int s = 0; s < q.n; ++s) fresh.push_back(&running_[running_.size() - size_t(q.n) + size_t(s)]);
    sample_rows(last.expand({q.n, last.size(1)}), fresh);
  }

  // Samples the next token of each row of `logits` [rows, vocab] for the given samples.
  void sample_rows(const at::Tensor& logits, const std::vector<Active*>& rows) {
    const double t0 = monotonic_seconds();
    std::vector<SequenceRng*> rngs;
    for (Active* a : rows) rngs.push_back(&a->rng);
    const std::vector<SampledToken> picked = sample_tokens(logits, e_.opt_.sampling, rngs, e_.suppressed_);
    for (size_t i = 0; i < rows.size(); ++i) {
      rows[i]->out.tokens.push_back(picked[i].token);
      rows[i]->out.logprobs.push_back(picked[i].logprob);
      rows[i]->pending = picked[i].token;
    }
    e_.stats_.sampling_seconds += monotonic_seconds() - t0;
  }

  // eos, a stop string in the text of the last few tokens, or the length limit; null while running.
  const char* finished_reason(const Active& a) const {
    const EngineOptions& o = e_.opt_;
    const int64_t t = a.out.tokens.back();
    if (std::find(o.eos_ids.begin(), o.eos_ids.end(), t) != o.eos_ids.end()) return "eos";
    if (max_stop_ > 0) {
      const size_t window = std::min(a.out.tokens.size(), max_stop_ + 8);
      const std::string tail = o.detokenize(std::vector<int64_t>(a.out.tokens.end() - long(window), a.out.tokens.end()));
      for (const auto& s : o.stop_strings)
        if (!s.empty() && tail.find(s) != std::string::npos) return "stop";
    }
    if (int64_t(a.out.tokens.size()) >= a.max_new) return "length";
    return nullptr;
  }

  // Removes the finished samples among running_[from, end), freeing their slots and KV blocks.
  void retire_finished(size_t from) {
    for (size_t i = from; i < running_.size();) {
      if (const char* reason = finished_reason(running_[i])) {
        finish(running_[i], reason);
        running_.erase(running_.begin() + long(i));
      } else {
        ++i;
      }
    }
  }

  void finish(Active& a, const char* reason) {
    a.out.finish_reason = reason;
    cache_.release(a.seq);
    if (on_finish_) on_finish_(a.out);
    results_[first_result_[a.request] + size_t(a.out.sample_index)] = std::move(a.out);
  }

  GenerationEngine& e_;
  const model::Qwen2Config& cfg_;
  const std::vector<GenerationRequest>& requests_;
  const std::function<void(const GeneratedSample&)>& on_finish_;
  const at::ScalarType dtype_;
  const at::Device device_;
  PagedKVCache cache_;
  const int64_t bs_;
  std::vector<size_t> first_result_;   // results index of each request's sample 0
  std::vector<GeneratedSample> results_;
  std::vector<Active> running_;        // in admission order: the newest last
  std::deque<Active> preempted_;       // waiting to resume, in admission order
  size_t next_request_ = 0;
  size_t max_stop_ = 0;                // longest stop string
};

std::vector<GeneratedSample> GenerationEngine::generate(const std::vector<GenerationRequest>& requests,
                                                        const std::function<void(const GeneratedSample&)>& on_finish) {
  torch::NoGradGuard no_grad;
  Run run(*this, requests, on_finish);
  while (!run.done()) {
    run.admit();
    run.decode_step();
  }
  return run.take_results();
}

}  // namespace ovr::engine
