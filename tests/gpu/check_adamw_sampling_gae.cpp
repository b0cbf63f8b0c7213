// GPU check of the AdamW, sampling and GAE kernels at realistic sizes: CUDA against the CPU twin
// (inputs copied to the host) and against the plain LibTorch way on the GPU, both timed.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/adamw.h"
#include "kernels/gae.h"
#include "kernels/sampling.h"
#include "tests/gpu/kernel_check.h"
#include "tests/sampling_reference.h"

namespace ovr::gpucheck {

namespace {

using kernels::Device;

// max |a - b| / max(1, max |b|)
double rel(const at::Tensor& a, const at::Tensor& b) {
  return max_abs_diff(a, b) / std::max(1.0, b.to(at::kDouble).abs().max().item<double>());
}

template <class T>
T* ptr(const at::Tensor& t) {
  return static_cast<T*>(t.data_ptr());
}

}  // namespace

void check_adamw() {
  const int64_t n = int64_t(1) << 28;
  const auto cuda = at::TensorOptions().dtype(at::kFloat).device(at::kCUDA);
  at::manual_seed(1);
  const at::Tensor p0 = at::randn({n}, cuda), m0 = 0.1 * at::randn({n}, cuda), v0 = 0.01 * at::randn({n}, cuda).abs();
  const at::Tensor g = at::randn({n}, cuda);
  kernels::AdamWArgs a;
  a.n = n, a.lr = 1e-4, a.beta1 = 0.9, a.beta2 = 0.95, a.eps = 1e-8, a.weight_decay = 0.1, a.step = 10, a.grad_scale = 0.5;
  a.param_dtype = kernels::DType::BF16;

  // Ours, one step from (p0, m0, v0).
  at::Tensor p = p0.clone(), m = m0.clone(), v = v0.clone(), out = at::empty({n}, cuda.dtype(at::kBFloat16));
  auto bind = [&](kernels::AdamWArgs& x, const at::Tensor& pp, const at::Tensor& mm, const at::Tensor& vv,
                  const at::Tensor& gg, const at::Tensor& oo) {
    x.master = ptr<float>(pp), x.exp_avg = ptr<float>(mm), x.exp_avg_sq = ptr<float>(vv), x.grad = ptr<float>(gg);
    x.param_out = oo.data_ptr();
  };
  bind(a, p, m, v, g, out);
  kernels::adamw_step(Device::CUDA, a, stream());

  // CPU twin on host copies.
  at::Tensor hp = p0.cpu(), hm = m0.cpu(), hv = v0.cpu(), hg = g.cpu(), hout = at::empty({n}, at::kBFloat16);
  kernels::AdamWArgs c = a;
  bind(c, hp, hm, hv, hg, hout);
  kernels::adamw_step(Device::CPU, c);

  // ZeroAdamW::step's LibTorch ops on the GPU (the clip as grad_shard_.mul_(coef)).
  at::Tensor tp = p0.clone(), tm = m0.clone(), tv = v0.clone(), tg = g.clone();
  const double bias1 = 1 - std::pow(a.beta1, double(a.step)), bias2 = 1 - std::pow(a.beta2, double(a.step));
  auto torch_step = [&] {
    tg.mul_(a.grad_scale);
    tp.mul_(1 - a.lr * a.weight_decay);
    tm.mul_(a.beta1).add_(tg, 1 - a.beta1);
    tv.mul_(a.beta2).addcmul_(tg, tg, 1 - a.beta2);
    at::Tensor denom = (tv.sqrt() / std::sqrt(bias2)).add_(a.eps);
    tp.addcdiv_(tm, denom, -a.lr / bias1);
    return tp.to(at::kBFloat16);
  };
  const at::Tensor tout = torch_step();
  const double err_cpu = std::max({rel(p, hp), rel(m, hm), rel(v, hv)});
  const double err_torch = std::max({rel(p, tp), rel(m, tm), rel(v, tv)});
  const double err_bf16 = std::max(max_abs_diff(out, hout), max_abs_diff(out, tout));

  Row r;
  r.kernel = "adamw step fp32 master, bf16 param_out, n=2^28";
  r.err_cpu = err_cpu, r.err_torch = err_torch, r.tol = 1e-5;
  r.ms = time_ms([&] { kernels::adamw_step(Device::CUDA, a, stream()); });
  r.torch_ms = time_ms([&] { torch_step(); });
  r.bytes = 30.0 * double(n);  // read p, m, v, g (16 B), write p, m, v (12 B) and bf16 p (2 B)
  r.note = "err: max rel over master/exp_avg/exp_avg_sq; bf16 param_out max |diff| " + std::to_string(err_bf16) +
           " (1 bf16 ulp where the masters differ by an fp32 ulp); torch = ZeroAdamW::step's ops + .to(bf16)";
  report(r);

  // The gradient's sum of squares (the clip's norm), against ZeroAdamW's g.pow(2).sum(kDouble).
  at::Tensor sq = at::zeros({1}, cuda.dtype(at::kDouble));
  kernels::grad_sum_squares(Device::CUDA, ptr<float>(g), n, ptr<double>(sq), stream());
  double sq_cpu = 0;
  kernels::grad_sum_squares(Device::CPU, ptr<float>(hg), n, &sq_cpu);
  const double sq_gpu = sq.item<double>();
  const double sq_torch = g.pow(2).sum(at::kDouble).item<double>();
  Row s;
  s.kernel = "adamw grad_sum_squares n=2^28";
  s.err_cpu = std::abs(sq_gpu - sq_cpu) / sq_cpu, s.err_torch = std::abs(sq_gpu - sq_torch) / sq_torch, s.tol = 1e-10;
  s.ms = time_ms([&] { kernels::grad_sum_squares(Device::CUDA, ptr<float>(g), n, ptr<double>(sq), stream()); });
  s.torch_ms = time_ms([&] { (void)g.pow(2).sum(at::kDouble); });
  s.bytes = 4.0 * double(n);
  s.note = "relative error of the sum; deterministic (fixed grid, two passes)";
  report(s);
}

namespace {

// The plain LibTorch top-p (and top-k) the way a PyTorch sampler does it: softmax, sort descending,
// cumsum, mask, renormalise, multinomial.
at::Tensor torch_top_p(const at::Tensor& logits, float T, float top_p, int64_t top_k) {
  at::Tensor probs = at::softmax(logits.to(at::kFloat) / T, -1);
  if (top_p >= 1 && top_k == 0) return at::multinomial(probs, 1);
  auto [sorted, idx] = probs.sort(-1, /*descending=*/true);
  at::Tensor remove = (sorted.cumsum(-1) - sorted) >= top_p;
  if (top_k > 0) remove.narrow(1, top_k, sorted.size(1) - top_k).fill_(true);
  sorted.masked_fill_(remove, 0);
  sorted.div_(sorted.sum(-1, true));
  return idx.gather(1, at::multinomial(sorted, 1));
}

// The same kept set with the kernels' draw (id order, target = u * kept mass), in double, to
// compare tokens with the same uniforms.
at::Tensor torch_top_p_same_draw(const at::Tensor& logits, float T, float top_p, int64_t top_k, const at::Tensor& u) {
  at::Tensor probs = at::softmax(logits.to(at::kDouble) / T, -1);
  const int64_t V = probs.size(1);
  at::Tensor kept = at::ones_like(probs, at::kBool);
  if (top_p < 1 || (top_k > 0 && top_k < V)) {
    auto [sorted, idx] = probs.sort(/*stable=*/true, -1, /*descending=*/true);
    at::Tensor keep = (sorted.cumsum(-1) - sorted) < top_p;
    if (top_k > 0 && top_k < V) keep.narrow(1, top_k, V - top_k).fill_(false);
    kept = at::zeros_like(keep).scatter_(1, idx, keep);
  }
  at::Tensor masked = probs * kept;
  at::Tensor K = (top_p < 1 || (top_k > 0 && top_k < V)) ? masked.sum(-1, true) : at::ones({probs.size(0), 1}, probs.options());
  at::Tensor cum = masked.cumsum(-1);
  return (cum <= u.unsqueeze(1) * K).sum(-1).clamp_max(V - 1);
}

}  // namespace

void check_sampling() {
  const int64_t rows = 256, V = 151936;
  at::manual_seed(2);
  // Logits like an LM head's: a spread bulk and a few strong candidates per row.
  at::Tensor logits = (2.0 * at::randn({rows, V}, at::TensorOptions().device(at::kCUDA)));
  logits.narrow(1, 0, 64).add_(at::rand({rows, 64}, logits.options()) * 12.0);
  logits = logits.index_select(1, at::randperm(V, logits.options().dtype(at::kLong))).to(at::kBFloat16);
  const at::Tensor hlogits = logits.cpu();
  const at::Tensor u = at::rand({rows}, at::TensorOptions().dtype(at::kDouble).device(at::kCUDA));
  const at::Tensor hu = u.cpu();

  struct Config {
    const char* name;
    float T, top_p;
    int64_t top_k;
  };
  for (const Config& cfg : {Config{"top_p 0.95 top_k 50", 1.0f, 0.95f, 50}, Config{"top_p 0.95", 1.0f, 0.95f, 0},
                            Config{"plain", 1.0f, 1.0f, 0}}) {
    const auto f32 = at::TensorOptions().dtype(at::kFloat);
    at::Tensor T = at::full({rows}, cfg.T, f32), tp = at::full({rows}, cfg.top_p, f32);
    at::Tensor tk = at::full({rows}, cfg.top_k, f32.dtype(at::kLong));
    at::Tensor dT = T.cuda(), dtp = tp.cuda(), dtk = tk.cuda();
    at::Tensor tok = at::empty({rows}, f32.dtype(at::kLong).device(at::kCUDA)), lp = at::empty({rows}, f32.device(at::kCUDA));
    kernels::SamplingArgs a;
    a.rows = rows, a.V = V, a.dtype = kernels::DType::BF16, a.logits = logits.data_ptr();
    a.temperature = ptr<float>(dT), a.top_p = ptr<float>(dtp), a.top_k = ptr<int64_t>(dtk), a.uniforms = ptr<double>(u);
    a.token = ptr<int64_t>(tok), a.logprob = ptr<float>(lp);
    kernels::sample_tokens(Device::CUDA, a, stream());
    const at::Tensor gtok = tok.cpu(), glp = lp.cpu();

    at::Tensor htok = at::empty({rows}, at::kLong), hlp = at::empty({rows}, at::kFloat);
    kernels::SamplingArgs c = a;
    c.logits = hlogits.data_ptr(), c.temperature = ptr<float>(T), c.top_p = ptr<float>(tp), c.top_k = ptr<int64_t>(tk);
    c.uniforms = ptr<double>(hu), c.token = ptr<int64_t>(htok), c.logprob = ptr<float>(hlp);
    kernels::sample_tokens(Device::CPU, c);
    const at::Tensor ttok = torch_top_p_same_draw(logits, cfg.T, cfg.top_p, cfg.top_k, u).cpu();

    // Rows whose top_p or draw lands within rounding of a cumulative mass may differ legitimately.
    const at::Tensor lf = hlogits.to(at::kFloat).contiguous();
    double err_cpu = 0, err_torch = 0;
    int safe = 0, token_diff_cpu = 0, token_diff_torch = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = ptr<float>(lf) + r * V;
      const auto ref = test::reference_sample(std::vector<float>(row, row + V), cfg.T, cfg.top_p, cfg.top_k, false,
                                              ptr<double>(hu)[r]);
      if (!ref.safe) continue;
      ++safe;
      const int64_t gt = ptr<int64_t>(gtok)[r];
      if (gt != ptr<int64_t>(htok)[r]) ++token_diff_cpu, err_cpu = 1;
      else err_cpu = std::max(err_cpu, double(std::abs(ptr<float>(glp)[r] - ptr<float>(hlp)[r])));
      if (gt != ptr<int64_t>(ttok)[r]) ++token_diff_torch, err_torch = 1;
      else err_torch = std::max(err_torch, std::abs(ptr<float>(glp)[r] - ref.logprob));
    }
    Row row;
    row.kernel = std::string("sampling bf16 ") + cfg.name + " 256x151936";
    row.err_cpu = err_cpu, row.err_torch = err_torch, row.tol = 1e-4;
    row.ms = time_ms([&] { kernels::sample_tokens(Device::CUDA, a, stream()); });
    row.torch_ms = time_ms([&] { (void)torch_top_p(logits, cfg.T, cfg.top_p, cfg.top_k); });
    row.bytes = double(rows) * double(V) * 2;  // the bf16 logits, read once at least
    row.note = std::to_string(safe) + "/256 rows away from rounding boundaries compared: token mismatches " +
               std::to_string(token_diff_cpu) + " vs CPU twin, " + std::to_string(token_diff_torch) +
               " vs LibTorch sort-based kept set with the same draw; err = 1 on a mismatch, else max |logprob diff|; "
               "torch_ms = softmax, sort, cumsum, mask, renormalise, multinomial";
    report(row);
  }
}

void check_gae() {
  // 512 sequences: every 32nd 48k tokens long, the rest up to 4k.
  std::vector<int64_t> off = {0};
  at::manual_seed(3);
  const at::Tensor lens = at::randint(0, 4000, {512}, at::kLong);
  for (int64_t i = 0; i < 512; ++i) off.push_back(off.back() + (i % 32 == 0 ? 48000 : ptr<int64_t>(lens)[i]));
  const int64_t n = off.back();
  const auto cuda = at::TensorOptions().dtype(at::kFloat).device(at::kCUDA);
  const at::Tensor r = at::randn({n}, cuda), v = at::randn({n}, cuda);
  const at::Tensor doff = at::from_blob(off.data(), {int64_t(off.size())}, at::kLong).to(at::kCUDA);
  at::Tensor adv = at::empty({n}, cuda), ret = at::empty({n}, cuda);
  kernels::GaeArgs a;
  a.n = n, a.sequences = 512, a.rewards = ptr<float>(r), a.values = ptr<float>(v), a.offsets = ptr<int64_t>(doff);
  a.gamma = 0.99, a.lambda = 0.95, a.advantages = ptr<float>(adv), a.returns = ptr<float>(ret);

  for (double gl : {1.0, 0.95}) {
    a.gamma = gl == 1.0 ? 1.0 : 0.99, a.lambda = gl;
    kernels::gae(Device::CUDA, a, stream());
    // The CPU twin = rl::gae's loop; also the baseline timed: what rl::gae does today (copy to the
    // host, loop, copy back), with the twin's OpenMP over sequences.
    at::Tensor hr, hv, hadv, hret;
    auto cpu_path = [&] {
      hr = r.cpu(), hv = v.cpu();
      hadv = at::empty({n}, at::kFloat), hret = at::empty({n}, at::kFloat);
      kernels::GaeArgs c = a;
      c.rewards = ptr<float>(hr), c.values = ptr<float>(hv), c.offsets = off.data();
      c.advantages = ptr<float>(hadv), c.returns = ptr<float>(hret);
      kernels::gae(Device::CPU, c);
      (void)hadv.to(at::kCUDA), (void)hret.to(at::kCUDA);
    };
    cpu_path();
    Row row;
    row.kernel = std::string("gae gamma=") + (gl == 1.0 ? "1 lambda=1" : "0.99 lambda=0.95") + " 512 seqs, " +
                 std::to_string(n) + " tokens";
    row.err_cpu = std::max(rel(adv, hadv), rel(ret, hret));
    row.err_torch = row.err_cpu;
    row.tol = 1e-6;
    row.ms = time_ms([&] { kernels::gae(Device::CUDA, a, stream()); });
    row.torch_ms = time_ms(cpu_path, 1, 3);
    row.bytes = 16.0 * double(n);  // read rewards, values; write advantages, returns
    row.note = "torch_ms = the CPU path rl::gae takes (D2H copies, the twin's loop over OpenMP threads, H2D); "
               "err_torch = err_cpu (the twin is rl::gae's loop, bit-identical); err relative to max(1, max |CPU|)";
    report(row);
  }
}

}  // namespace ovr::gpucheck
