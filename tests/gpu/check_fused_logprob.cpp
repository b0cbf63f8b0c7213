// GPU check of the fused linear log-prob, through the LibTorch op the trainers use
// (ops/fused_logprob_op.h): CUDA against the CPU twin, and against the plain way (matmul,
// log_softmax, gather, autograd) in time and peak memory at T = 8192, V = 151936, H = 3584.
#include <ATen/ATen.h>
#include <torch/torch.h>

#include "tests/gpu/kernel_check.h"
#include "ops/fused_logprob_op.h"

namespace ovr::gpucheck {

namespace {

constexpr int64_t kV = 151936, kH = 3584;

// max |a - b| / max(1, max |b|): absolute for log-probs (|b| < 1 is rare), relative for gradients.
double err(const at::Tensor& a, const at::Tensor& b) {
  const double scale = std::max(1.0, b.to(at::kDouble).abs().max().item<double>());
  return max_abs_diff(a, b) / scale;
}

struct Inputs {
  at::Tensor hidden, weight, targets, g_logprob, g_entropy;
};

Inputs make_inputs(int64_t T, at::ScalarType dt, at::Device dev) {
  at::manual_seed(T);
  auto f32 = at::TensorOptions().dtype(at::kFloat).device(dev);
  Inputs in;
  in.hidden = at::randn({T, kH}, f32).to(dt);
  in.weight = (0.02 * at::randn({kV, kH}, f32)).to(dt);  // logits of std ~1.2, as a trained lm_head gives
  in.targets = at::randint(kV, {T}, at::TensorOptions().dtype(at::kLong).device(dev));
  in.g_logprob = at::randn({T}, f32);
  in.g_entropy = at::randn({T}, f32);
  return in;
}

struct Result {
  at::Tensor logprob, entropy, grad_hidden, grad_weight;
};

// Loss = sum g_logprob * logprob + g_entropy * entropy, backward to both inputs.
Result run_fused(const Inputs& in, bool with_entropy) {
  at::Tensor h = in.hidden.detach().requires_grad_(true), w = in.weight.detach().requires_grad_(true);
  const auto out = ops::fused_logprob(h, w, in.targets, with_entropy);
  at::Tensor loss = (out.logprob * in.g_logprob).sum();
  if (with_entropy) loss = loss + (out.entropy * in.g_entropy).sum();
  loss.backward();
  return {out.logprob.detach(), with_entropy ? out.entropy.detach() : at::Tensor(), h.grad(), w.grad()};
}

// The plain way, as sft_batch.cpp did before the fused op: logits in the inputs' dtype, then fp32.
Result run_plain(const Inputs& in, bool with_entropy) {
  at::Tensor h = in.hidden.detach().requires_grad_(true), w = in.weight.detach().requires_grad_(true);
  const at::Tensor logp = at::log_softmax(at::matmul(h, w.t()).to(at::kFloat), -1);
  const at::Tensor lp = logp.gather(1, in.targets.unsqueeze(1)).squeeze(1);
  at::Tensor loss = (lp * in.g_logprob).sum();
  at::Tensor ent;
  if (with_entropy) {
    ent = -(logp.exp() * logp).sum(-1);
    loss = loss + (ent * in.g_entropy).sum();
  }
  loss.backward();
  return {lp.detach(), with_entropy ? ent.detach() : at::Tensor(), h.grad(), w.grad()};
}

double worst(const Result& a, const Result& b) {
  double e = std::max(err(a.logprob, b.logprob), std::max(err(a.grad_hidden, b.grad_hidden), err(a.grad_weight, b.grad_weight)));
  if (a.entropy.defined()) e = std::max(e, err(a.entropy, b.entropy));
  return e;
}

double gradient_mib(const Inputs& in) {
  return double(in.hidden.nbytes() + in.weight.nbytes()) / (1 << 20);
}

}  // namespace

void check_fused_logprob() {
  // 1. CUDA against the CPU twin (same op on CPU tensors), fp32, with the entropy.
  {
    const int64_t T = 256;
    Inputs gpu = make_inputs(T, at::kFloat, at::kCUDA);
    Inputs cpu{gpu.hidden.cpu(), gpu.weight.cpu(), gpu.targets.cpu(), gpu.g_logprob.cpu(), gpu.g_entropy.cpu()};
    const Result g = run_fused(gpu, true), c = run_fused(cpu, true);
    Row r;
    r.kernel = "fused_logprob fwd+bwd +entropy fp32 T=256 V=151936 H=3584";
    r.err_cpu = worst(g, c);
    r.err_torch = worst(g, run_plain(gpu, true));
    r.tol = 1e-3;
    r.note = "err: max|diff| / max(1, max|ref|) over logprob, entropy, both gradients";
    report(r);
  }
  // 2./3. Training (forward + backward through autograd) at T = 8192, fp32 and bf16.
  for (at::ScalarType dt : {at::kFloat, at::kBFloat16}) {
    const int64_t T = 8192;
    const bool bf16 = dt == at::kBFloat16;
    Inputs in = make_inputs(T, dt, at::kCUDA);
    Row r;
    r.kernel = std::string("fused_logprob fwd+bwd ") + (bf16 ? "bf16" : "fp32") + " T=8192 V=151936 H=3584";
    {
      const Result f = run_fused(in, false);
      if (bf16) {  // against fp32 arithmetic on the same bf16 values: the plain bf16 way rounds its logits
        Inputs up{in.hidden.to(at::kFloat), in.weight.to(at::kFloat), in.targets, in.g_logprob, in.g_entropy};
        const Result p = run_plain(up, false);
        r.err_torch = std::max(err(f.logprob, p.logprob), std::max(err(f.grad_hidden, p.grad_hidden),
                                                                   err(f.grad_weight, p.grad_weight)));
      } else {
        r.err_torch = worst(f, run_plain(in, false));
      }
    }
    empty_cache();
    r.tol = bf16 ? 3e-2 : 1e-3;
    r.ms = time_ms([&] { run_fused(in, false); }, 1, 3);
    r.torch_ms = time_ms([&] { run_plain(in, false); }, 1, 3);
    r.flops = 6.0 * T * kV * kH;  // the 3 GEMMs any way needs; the fused backward's recompute counts against it
    r.bf16_flops = bf16;
    // Peak above the inputs and the gradients (which both ways return in the inputs' dtype).
    r.peak_mib = peak_extra_mib([&] { run_fused(in, false); }) - gradient_mib(in);
    r.torch_peak_mib = peak_extra_mib([&] { run_plain(in, false); }) - gradient_mib(in);
    r.note = bf16 ? "err vs fp32 arithmetic on the bf16 values; the plain bf16 way rounds logits to bf16" : "";
    report(r);
  }
  // 4. Scoring (forward only, no autograd): old / reference log-probs of rollouts, bf16.
  {
    const int64_t T = 8192;
    Inputs in = make_inputs(T, at::kBFloat16, at::kCUDA);
    torch::NoGradGuard no_grad;
    auto fused = [&] { return ops::fused_logprob(in.hidden, in.weight, in.targets).logprob; };
    auto plain = [&] {
      return at::log_softmax(at::matmul(in.hidden, in.weight.t()).to(at::kFloat), -1)
          .gather(1, in.targets.unsqueeze(1))
          .squeeze(1);
    };
    Row r;
    r.kernel = "fused_logprob fwd (scoring) bf16 T=8192 V=151936 H=3584";
    r.err_torch = err(fused(), at::log_softmax(at::matmul(in.hidden.to(at::kFloat), in.weight.to(at::kFloat).t()), -1)
                                   .gather(1, in.targets.unsqueeze(1))
                                   .squeeze(1));
    empty_cache();
    r.tol = 1e-2;
    r.ms = time_ms([&] { fused(); }, 1, 5);
    r.torch_ms = time_ms([&] { plain(); }, 1, 5);
    r.flops = 2.0 * T * kV * kH;
    r.bf16_flops = true;
    r.peak_mib = peak_extra_mib([&] { fused(); });
    r.torch_peak_mib = peak_extra_mib([&] { plain(); });
    r.note = "err vs fp32 arithmetic on the bf16 values";
    report(r);
  }
}

}  // namespace ovr::gpucheck
