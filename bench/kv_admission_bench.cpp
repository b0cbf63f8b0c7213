// Concurrency under a fixed KV budget with the paper's length limit (max_new_tokens = 48k) and
// realistic, mostly short responses: the engine admitting by the blocks sequences hold (and
// preempting when the pool runs short) against worst-case reservation, which admits only
// budget / (prompt + 48k) sequences at a time -- emulated in the same run by capping the batch at
// that count, which is exactly what the reservation allowed. Both runs must produce the same
// tokens (per-sequence random streams).
//
// The model has random weights; a set of "end" tokens whose share of the vocabulary is about
// 1 / mean gives geometric response lengths (many short, a long tail), as reasoning traces have.
//
//   kv_admission_bench CONFIG_JSON [REQUESTS] [MEAN_LENGTH] [SEQUENCES_RESERVED]
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "common/clock.h"
#include "common/error.h"
#include "common/mpi_runtime.h"
#include "engine/generation.h"
#include "engine/paged_kv_cache.h"
#include "model/qwen2.h"

using namespace ovr;

int main(int argc, char** argv) {
  return run_main("kv_admission_bench", argc, argv, [](int argc, char** argv) {
    if (argc < 2) throw Error("usage: kv_admission_bench CONFIG_JSON [REQUESTS] [MEAN_LENGTH] [SEQUENCES_RESERVED]");
    const int requests = argc > 2 ? std::atoi(argv[2]) : 64;
    const int64_t mean = argc > 3 ? std::atoll(argv[3]) : 256;
    const int64_t reserved = argc > 4 ? std::atoll(argv[4]) : 4;  // sequences worst-case reservation admits
    const int64_t max_new = 48 * 1024, prompt = 32;
    torch::set_num_threads(1);
    torch::manual_seed(0);
    model::Qwen2ForCausalLM lm(model::load_qwen2_config(argv[1]));
    lm->eval();
    const int64_t vocab = lm->config.vocab_size;

    engine::EngineOptions o;
    o.block_size = 16;
    o.max_new_tokens = max_new;
    o.seed = 3;
    o.sampling.temperature = 1.0;
    for (int64_t t = 0; t < std::max<int64_t>(1, vocab / mean); ++t) o.eos_ids.push_back(t);
    // The budget worst-case reservation fills with `reserved` sequences.
    o.kv_cache_tokens = reserved * engine::PagedKVCache::blocks_for(prompt + max_new, o.block_size) * o.block_size;
    std::vector<engine::GenerationRequest> reqs(static_cast<size_t>(requests));
    for (int i = 0; i < requests; ++i) {
      reqs[size_t(i)].prompt_id = i;
      const at::Tensor ids = torch::randint(vocab / 2, vocab, {prompt}, at::kLong);
      reqs[size_t(i)].prompt_ids.assign(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + prompt);
    }

    std::printf("KV budget %lld tokens (worst-case reservation: %lld sequences of %lld + %lld tokens), %d requests\n",
                (long long)o.kv_cache_tokens, (long long)reserved, (long long)prompt, (long long)max_new, requests);
    std::printf("%-40s %10s %10s %12s %12s\n", "admission", "peak batch", "tokens", "tokens/s", "preemptions");
    std::vector<engine::GeneratedSample> first;
    for (const bool by_holding : {false, true}) {
      engine::EngineOptions run = o;
      run.max_batch = by_holding ? 256 : reserved;
      engine::GenerationEngine engine(lm, run);
      const double t0 = monotonic_seconds();
      const auto out = engine.generate(reqs);
      const double s = monotonic_seconds() - t0;
      int64_t tokens = 0, longest = 0;
      std::vector<int64_t> lengths;
      for (const auto& r : out) tokens += int64_t(r.tokens.size()), lengths.push_back(int64_t(r.tokens.size()));
      std::sort(lengths.begin(), lengths.end());
      longest = lengths.back();
      std::printf("%-40s %10lld %10lld %12.0f %12lld\n",
                  by_holding ? "by blocks held + preemption (ovr now)" : "worst-case reservation (before)",
                  (long long)engine.stats().peak_batch, (long long)tokens, double(tokens) / s,
                  (long long)engine.stats().preemptions);
      if (!by_holding) {
        first = out;
        std::printf("  response lengths: mean %.0f, median %lld, max %lld (limit %lld)\n", double(tokens) / double(out.size()),
                    (long long)lengths[lengths.size() / 2], (long long)longest, (long long)max_new);
      } else {
        bool same = first.size() == out.size();
        for (size_t i = 0; same && i < out.size(); ++i) same = first[i].tokens == out[i].tokens;
        std::printf("  the same tokens in both runs: %s\n", same ? "yes" : "NO");
      }
    }
    return 0;
  });
}
