// GPU check of the language model and the generation engine, built against an official LibTorch
// with CUDA (tests/gpu/check.sh builds and runs it on a machine with an NVIDIA GPU):
//   1. parity with transformers on CUDA in fp32 and bf16 (fixtures of tests/fixtures/qwen2_5_vl_tiny)
//   2. greedy generation on CUDA equals transformers' tokens (fp32)
//   3. decode and prefill throughput of a Qwen2.5-0.5B-shaped model in bf16 at several batch sizes
// It needs no MPI or HDF5: weights are read straight from the fixture's safetensors.
#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>

#include "io/safetensors.h"
#include "model/qwen2.h"
#include "engine/generation.h"

using namespace ovr;

namespace {

std::string published(const std::string& n) {
  if (n.rfind("model.language_model.", 0) == 0) return "model." + n.substr(21);
  return n;
}

at::Tensor read(const io::SafetensorsFile& f, const io::SafetensorsEntry& e) {
  std::vector<char> buf(e.info.nbytes());
  f.read(e.info.name, buf.data());
  const auto t = e.info.dtype == io::DType::F32 ? at::kFloat : e.info.dtype == io::DType::I64 ? at::kLong : at::kBFloat16;
  return torch::from_blob(buf.data(), e.info.shape, t).clone();
}

std::map<std::string, at::Tensor> read_all(const std::string& path) {
  io::SafetensorsFile f(path);
  std::map<std::string, at::Tensor> out;
  for (const auto& e : f.header().entries) out[published(e.info.name)] = read(f, e);
  return out;
}

double rel_err(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kCPU, at::kFloat) - b).abs().max().item<double>() / b.abs().max().item<double>();
}

double seconds() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !torch::cuda::is_available()) {
    std::printf("usage: model_cuda_check FIXTURE_DIR (and a CUDA device)\n");
    return 2;
  }
  const std::string dir = argv[1];
  torch::NoGradGuard no_grad;
  int failures = 0;
  auto weights = read_all(dir + "/model.safetensors");
  auto ref = read_all(dir + "/parity.safetensors");
  std::printf("%-52s %12s %8s\n", "check", "value", "verdict");
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    model::Qwen2ForCausalLM lm(model::load_qwen2_config(dir + "/config.json"));
    for (auto& p : lm->named_parameters()) p.value().copy_(weights.at(p.key()));
    lm->to(at::kCUDA, dtype);
    lm->eval();
    const bool fp32 = dtype == at::kFloat;
    const double tol = fp32 ? 1e-4 : 3e-2;
    for (const std::string side : {"right", "left"}) {
      at::Tensor ids = ref.at("text_" + side + "_ids").to(at::kCUDA), mask = ref.at("text_" + side + "_mask").to(at::kCUDA);
      at::Tensor valid = ref.at("text_" + side + "_mask").to(at::kBool);
      const double e = rel_err(lm->forward(ids, mask).to(at::kCPU).index({valid}), ref.at("text_" + side + "_logits").index({valid}));
      const bool ok = e <= tol;
      failures += !ok;
      std::printf("%-52s %12.2e %8s\n", (std::string(fp32 ? "fp32" : "bf16") + " logits, " + side + "-padded batch, rel err").c_str(), e, ok ? "ok" : "FAIL");
    }
    at::Tensor long_ids = ref.at("long_ids").to(at::kCUDA);
    const double e = rel_err(lm->forward(long_ids, torch::ones_like(long_ids)), ref.at("long_logits"));
    failures += e > tol;
    std::printf("%-52s %12.2e %8s\n", (std::string(fp32 ? "fp32" : "bf16") + " logits, 200 tokens, rel err").c_str(), e, e <= tol ? "ok" : "FAIL");
    // Greedy generation through the engine (paged KV cache on the GPU).
    engine::EngineOptions o;
    o.sampling.greedy = true;
    o.eos_ids = {511};
    o.max_new_tokens = 16;
    o.block_size = 4;
    const at::Tensor prompts = ref.at("gen_prompt_ids"), pmask = ref.at("gen_prompt_mask"), want = ref.at("gen_output_ids");
    std::vector<engine::GenerationRequest> reqs;
    for (int64_t r = 0; r < prompts.size(0); ++r) {
      engine::GenerationRequest q;
      q.prompt_id = r;
      for (int64_t j = 0; j < prompts.size(1); ++j)
        if (pmask[r][j].item<int64_t>()) q.prompt_ids.push_back(prompts[r][j].item<int64_t>());
      reqs.push_back(q);
    }
    const auto out = engine::GenerationEngine(lm, o).generate(reqs);
    int same = 0, total = 0;
    for (size_t r = 0; r < out.size(); ++r)
      for (size_t j = 0; j < out[r].tokens.size(); ++j, ++total)
        same += out[r].tokens[j] == want[long(r)][prompts.size(1) + long(j)].item<int64_t>();
    const bool ok = !fp32 || same == total;
    failures += !ok;
    std::printf("%-52s %9d/%-2d %8s\n", (std::string(fp32 ? "fp32" : "bf16") + " greedy tokens equal to transformers'").c_str(), same,
                total, ok ? "ok" : "FAIL");
  }

  // Throughput: a Qwen2.5-0.5B-shaped model (random weights), bf16.
  model::Qwen2Config c;
  c.model_type = "qwen2";
  c.vocab_size = 151936, c.hidden_size = 896, c.intermediate_size = 4864, c.num_hidden_layers = 24;
  c.num_attention_heads = 14, c.num_key_value_heads = 2, c.head_dim = 64, c.tie_word_embeddings = true;
  model::Qwen2ForCausalLM big(c);
  for (auto& p : big->parameters()) p.normal_(0, 0.02);
  big->to(at::kCUDA, at::kBFloat16);
  big->eval();
  std::printf("\n0.5B-shaped Qwen2, bf16, prompt 128, 128 new tokens, top-p 0.95\n%6s %14s %14s %10s\n", "batch", "decode tok/s",
              "prefill tok/s", "sampling");
  for (int batch : {1, 16, 64, 256}) {
    engine::EngineOptions o;
    o.max_batch = batch;
    o.max_new_tokens = 128;
    o.sampling.top_p = 0.95;
    std::vector<engine::GenerationRequest> reqs(static_cast<size_t>(batch));
    for (int i = 0; i < batch; ++i) {
      reqs[size_t(i)].prompt_id = i;
      for (int j = 0; j < 128; ++j) reqs[size_t(i)].prompt_ids.push_back((i * 131 + j * 7) % 150000);
    }
    engine::GenerationEngine generator(big, o);
    torch::cuda::synchronize();
    generator.generate(reqs);
    torch::cuda::synchronize();
    const auto& s = generator.stats();
    std::printf("%6d %14.0f %14.0f %9.0f%%\n", batch, s.decode_tokens / s.decode_seconds, s.prefill_tokens / s.prefill_seconds,
                100 * s.sampling_seconds / (s.decode_seconds + s.prefill_seconds));
  }
  std::printf("\n%s\n", failures ? "GPU CHECK FAILED" : "GPU check passed");
  return failures ? 1 : 0;
}
