// Generation throughput of ovr's engine: prefill tokens/s and decode tokens/s at several batch
// sizes, with sampling (temperature 1, top-p 0.95) and a fixed number of new tokens per
// sequence. bench/generation_bench.sh runs it next to Hugging Face transformers' generate() on
// the same weights, threads and settings, and prints both.
//
//   generation_bench MODEL_DIR THREADS PROMPT_LEN NEW_TOKENS BATCH...
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>

#include "common/error.h"
#include "common/mpi_runtime.h"
#include "io/tensor_store.h"
#include "model/qwen2.h"
#include "model/weights.h"
#include "engine/generation.h"

using namespace ovr;

int main(int argc, char** argv) {
  return run_main("generation_bench", argc, argv, [](int argc, char** argv) {
    if (argc < 6) throw ovr::Error("usage: generation_bench MODEL_DIR THREADS PROMPT_LEN NEW_TOKENS BATCH...");
    const std::string dir = argv[1];
    torch::set_num_threads(std::atoi(argv[2]));
    const int64_t prompt_len = std::atoll(argv[3]), new_tokens = std::atoll(argv[4]);
    model::Qwen2ForCausalLM lm(model::load_qwen2_config(dir + "/config.json"));
    auto weights = io::open_model_source(dir);
    model::load_parameters(*lm, *weights, {"visual."});
    lm->eval();
    int64_t params = 0;
    for (const auto& p : lm->parameters()) params += p.numel();
    for (int a = 5; a < argc; ++a) {
      const int batch = std::atoi(argv[a]);
      engine::EngineOptions o;
      o.max_batch = batch;
      o.max_new_tokens = new_tokens;  // no EOS: every sequence generates exactly new_tokens
      o.sampling.temperature = 1.0;
      o.sampling.top_p = 0.95;
      o.seed = 1;
      std::vector<engine::GenerationRequest> reqs(static_cast<size_t>(batch));
      torch::manual_seed(0);
      for (int i = 0; i < batch; ++i) {
        at::Tensor ids = torch::randint(0, 150000, {prompt_len}, at::kLong);
        reqs[size_t(i)].prompt_id = i;
        reqs[size_t(i)].prompt_ids.assign(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + prompt_len);
      }
      engine::GenerationEngine generator(lm, o);
      generator.generate(reqs);
      const auto& s = generator.stats();
      std::printf("{\"impl\": \"ovr\", \"params\": %lld, \"batch\": %d, \"prefill_tok_s\": %.1f, \"decode_tok_s\": %.1f, "
                  "\"sampling_share\": %.3f, \"peak_kv_mb\": %.1f}\n",
                  (long long)params, batch, s.prefill_tokens / s.prefill_seconds, s.decode_tokens / s.decode_seconds,
                  s.sampling_seconds / (s.prefill_seconds + s.decode_seconds), s.peak_kv_bytes / 1e6);
      std::fflush(stdout);
    }
    return 0;
  });
}
