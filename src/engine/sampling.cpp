#include "engine/sampling.h"

#include <torch/torch.h>

#include <limits>

#include "common/error.h"
#include "ops/kernel_launch.h"
#include "kernels/sampling.h"

namespace ovr::engine {

SequenceRng::SequenceRng(uint64_t seed, int64_t prompt_id, int64_t sample_index) {
  std::seed_seq seq{uint32_t(seed), uint32_t(seed >> 32), uint32_t(uint64_t(prompt_id)),
                    uint32_t(uint64_t(prompt_id) >> 32), uint32_t(uint64_t(sample_index))};
  engine_.seed(seq);
}

double SequenceRng::uniform() {
  return double(engine_() >> 11) * 0x1.0p-53;  // 53 random bits: the same double on every platform
}

void validate(const SamplingParams& p) {
  if (p.greedy) return;
  if (!(p.temperature > 0)) throw Error("sampling: temperature must be > 0 (use greedy decoding for 0)");
  if (!(p.top_p > 0 && p.top_p <= 1)) throw Error("sampling: top_p must be in (0, 1]");
  if (p.top_k < 0) throw Error("sampling: top_k must be >= 0");
}

std::vector<SampledToken> sample_tokens(const at::Tensor& logits, const SamplingParams& p,
                                        const std::vector<SequenceRng*>& rngs, const at::Tensor& suppressed) {
  validate(p);
  const int64_t rows = logits.size(0), vocab = logits.size(1);
  if (int64_t(rngs.size()) != rows) throw Error("sample_tokens: one random stream per row is needed");
  // The kernel reads bf16 or fp32 rows; anything else becomes fp32. A private copy when tokens are
  // suppressed (the caller's logits stay as they were).
  const auto dt = logits.scalar_type() == at::kBFloat16 ? at::kBFloat16 : at::kFloat;
  at::Tensor z = logits.to(dt).contiguous();
  if (suppressed.defined() && suppressed.numel() > 0) {
    if (z.data_ptr() == logits.data_ptr()) z = z.clone();
    z.index_fill_(1, suppressed.to(z.device()), -std::numeric_limits<float>::infinity());
  }
  // Per-row parameters (one setting for the whole batch here) and each row's draw.
  std::vector<double> u(size_t(rows), 0.0);
  if (!p.greedy)
    for (int64_t i = 0; i < rows; ++i) u[size_t(i)] = rngs[size_t(i)]->uniform();
  const auto on = [&](at::ScalarType t) { return at::TensorOptions().dtype(t).device(z.device()); };
  const at::Tensor temperature = at::full({rows}, float(p.temperature), on(at::kFloat));
  const at::Tensor top_p = at::full({rows}, float(p.top_p), on(at::kFloat));
  const at::Tensor top_k = at::full({rows}, p.top_k, on(at::kLong));
  const at::Tensor greedy = at::full({rows}, p.greedy ? 1 : 0, on(at::kByte));
  const at::Tensor uniforms = torch::from_blob(u.data(), {rows}, at::kDouble).to(z.device());
  at::Tensor token = at::empty({rows}, on(at::kLong)), logprob = at::empty({rows}, on(at::kFloat));

  kernels::SamplingArgs a;
  a.rows = rows, a.V = vocab, a.dtype = dt == at::kBFloat16 ? kernels::DType::BF16 : kernels::DType::F32;
  a.logits = z.data_ptr(), a.temperature = temperature.data_ptr<float>(), a.top_p = top_p.data_ptr<float>();
  a.top_k = top_k.data_ptr<int64_t>(), a.greedy = greedy.data_ptr<uint8_t>(), a.uniforms = uniforms.data_ptr<double>();
  a.token = token.data_ptr<int64_t>(), a.logprob = logprob.data_ptr<float>();
  const ops::KernelLaunch launch = ops::kernel_launch(z);
  ops::run_kernel([&] { kernels::sample_tokens(launch.device, a, launch.stream); });

  const at::Tensor tok = token.cpu(), lp = logprob.cpu();
  std::vector<SampledToken> out(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) out[size_t(i)] = {tok.data_ptr<int64_t>()[i], lp.data_ptr<float>()[i]};
  return out;
}

}  // namespace ovr::engine
