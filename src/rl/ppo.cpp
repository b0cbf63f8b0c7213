#include "rl/ppo.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"
#include "ops/kernel_launch.h"
#include "kernels/gae.h"

namespace ovr::rl {

namespace {

// exp(20) ~ 5e8 is far past any clip range yet nowhere near float overflow (exp(89)).
constexpr double kMaxLogRatio = 20;

// The dtype the losses are computed in: float32, except that double stays double (the
// finite-difference tests need it). A bf16 policy's log-probabilities would otherwise be
// exponentiated and summed over a million tokens in bf16.
at::Tensor compute_dtype(const at::Tensor& x) {
  return x.scalar_type() == at::kDouble ? x : x.to(at::kFloat);
}

void check_same_shape(const at::Tensor& a, const at::Tensor& b, const char* what) {
  if (a.sizes() != b.sizes())
    throw Error(std::string(what) + ": shape mismatch (" + std::to_string(a.numel()) + " vs " +
                std::to_string(b.numel()) + " elements)");
}

// Copies a few scalar statistics to the host in one transfer: each .item() would be a device
// synchronisation of its own.
std::vector<double> to_host(const std::vector<at::Tensor>& scalars) {
  std::vector<at::Tensor> d;
  for (const auto& s : scalars) d.push_back(s.detach().to(at::kDouble).reshape({1}));
  at::Tensor h = at::cat(d).to(at::kCPU).contiguous();
  return std::vector<double>(h.data_ptr<double>(), h.data_ptr<double>() + h.numel());
}

}  // namespace

Advantages gae(const at::Tensor& rewards, const at::Tensor& values, const std::vector<int64_t>& offsets,
               double gamma, double lambda) {
  if (rewards.dim() != 1 || values.dim() != 1) throw Error("gae: rewards and values must be 1-D");
  check_same_shape(rewards, values, "gae: rewards and values");
  if (!(gamma >= 0 && gamma <= 1) || !(lambda >= 0 && lambda <= 1))
    throw Error("gae: gamma and lambda must be in [0, 1]");
  if (offsets.empty() || offsets.front() != 0 || offsets.back() != rewards.numel())
    throw Error("gae: offsets must run from 0 to the token count (" + std::to_string(rewards.numel()) + ")");
  for (size_t i = 1; i < offsets.size(); ++i)
    if (offsets[i] < offsets[i - 1]) throw Error("gae: offsets must be non-decreasing");

  // kernels/gae.h on the tensors' device, in double inside (with gamma * lambda near 1 the recursion
  // sums thousands of terms per sequence); the CPU twin is exactly the loop of the comment above.
  const auto f32 = rewards.options().dtype(at::kFloat);
  at::Tensor r = rewards.detach().to(f32).contiguous(), v = values.detach().to(f32).contiguous();
  at::Tensor off = torch::tensor(offsets, torch::kLong).to(rewards.device());
  at::Tensor a = at::empty_like(r), ret = at::empty_like(r);
  kernels::GaeArgs g;
  g.n = r.numel(), g.sequences = int64_t(offsets.size()) - 1, g.gamma = gamma, g.lambda = lambda;
  g.rewards = r.data_ptr<float>(), g.values = v.data_ptr<float>(), g.offsets = off.data_ptr<int64_t>();
  g.advantages = a.data_ptr<float>(), g.returns = ret.data_ptr<float>();
  const ops::KernelLaunch on = ops::kernel_launch(r);
  ops::run_kernel([&] { kernels::gae(on.device, g, on.stream); });
  return {a.to(rewards.scalar_type()), ret.to(rewards.scalar_type())};
}

void add_moments(const at::Tensor& x, double* sum, double* sumsq, int64_t* count) {
  at::Tensor xd = x.detach().to(at::kDouble);
  std::vector<double> h = to_host({xd.sum(), (xd * xd).sum()});
  *sum += h[0];
  *sumsq += h[1];
  *count += x.numel();
}

MeanStd moments(double sum, double sumsq, int64_t count) {
  if (count <= 0) return {0, 0};
  double mean = sum / double(count);
  // E[x^2] - E[x]^2 can come out a hair below 0 by rounding when all values are equal.
  double var = std::max(0.0, sumsq / double(count) - mean * mean);
  return {mean, std::sqrt(var)};
}

at::Tensor whiten(const at::Tensor& x, double mean, double std, double eps) {
  return (x - mean) / (std + eps);
}

PolicyLoss policy_loss(const at::Tensor& logprobs, const at::Tensor& old_logprobs, const at::Tensor& advantages,
                       const PolicyLossOptions& o) {
  if (!(o.clip_low >= 0 && o.clip_low < 1) || !(o.clip_high >= 0))
    throw Error("policy_loss: clip_low must be in [0, 1) and clip_high >= 0");
  if (!(o.dual_clip == 0 || o.dual_clip > 1)) throw Error("policy_loss: dual_clip must be 0 (off) or > 1");
  check_same_shape(logprobs, old_logprobs, "policy_loss: logprobs and old_logprobs");
  check_same_shape(logprobs, advantages, "policy_loss: logprobs and advantages");

  at::Tensor lp = compute_dtype(logprobs);
  at::Tensor old = old_logprobs.detach().to(lp.scalar_type());
  at::Tensor adv = advantages.detach().to(lp.scalar_type());
  at::Tensor log_ratio = (lp - old).clamp(-kMaxLogRatio, kMaxLogRatio);
  at::Tensor ratio = log_ratio.exp();

  // max(-r A, -clip(r) A) written as a select with a strict comparison, so that the gradient is
  // exactly -r A or exactly 0 (an elementwise max would split a tie between the two branches).
  // The clipped term can only be strictly larger when the clamp is active, where it is constant.
  at::Tensor unclipped = -adv * ratio;
  at::Tensor clipped = -adv * ratio.clamp(1 - o.clip_low, 1 + o.clip_high);
  at::Tensor take_clipped = clipped > unclipped;
  at::Tensor loss = at::where(take_clipped, clipped, unclipped);

  at::Tensor dual = at::zeros_like(take_clipped);
  if (o.dual_clip > 0) {
    // For A < 0 the loss is |A| * max(r, 1 - clip_low): unbounded in r. Cap it at c |A|.
    // (Never overlaps take_clipped: there the loss is |A| (1 - clip_low) < c |A|.)
    at::Tensor cap = -adv * o.dual_clip;
    dual = (adv < 0) & (loss > cap);
    loss = at::where(dual, cap, loss);
  }

  PolicyLoss out;
  out.loss_sum = loss.sum();
  at::Tensor r = ratio.detach(), lr = log_ratio.detach();
  // k3 rather than 0.5 (log r)^2: unbiased for KL(old || new) on tokens sampled from old, and >= 0.
  at::Tensor k3 = (r - 1) - lr;
  std::vector<double> h = to_host({take_clipped.sum(), dual.sum(), k3.sum(),
                                   r.numel() > 0 ? r.max() : at::zeros({1}, r.options())});
  out.clipped = int64_t(h[0] + h[1]);
  out.dual_clipped = int64_t(h[1]);
  out.approx_kl_sum = h[2];
  out.ratio_max = h[3];
  return out;
}

ValueLoss value_loss(const at::Tensor& values, const at::Tensor& old_values, const at::Tensor& returns, double clip) {
  check_same_shape(values, old_values, "value_loss: values and old_values");
  check_same_shape(values, returns, "value_loss: values and returns");
  at::Tensor v = compute_dtype(values);
  at::Tensor ret = returns.detach().to(v.scalar_type());
  at::Tensor err = (v - ret) * (v - ret);
  if (clip <= 0) return {err.sum().mul(0.5), 0};

  at::Tensor old = old_values.detach().to(v.scalar_type());
  at::Tensor v_clipped = old + (v - old).clamp(-clip, clip);
  at::Tensor err_clipped = (v_clipped - ret) * (v_clipped - ret);
  // Strict comparison, as in policy_loss: the clipped term only wins where the clamp is active.
  at::Tensor take_clipped = err_clipped > err;
  ValueLoss out;
  out.loss_sum = at::where(take_clipped, err_clipped, err).sum().mul(0.5);
  out.clipped = int64_t(to_host({take_clipped.sum()})[0]);
  return out;
}

at::Tensor kl_penalty_sum(const at::Tensor& logprobs, const at::Tensor& ref_logprobs) {
  check_same_shape(logprobs, ref_logprobs, "kl_penalty_sum: logprobs and ref_logprobs");
  at::Tensor lp = compute_dtype(logprobs);
  at::Tensor d = (ref_logprobs.detach().to(lp.scalar_type()) - lp).clamp(-kMaxLogRatio, kMaxLogRatio);
  return (d.exp() - d - 1).sum();
}

}  // namespace ovr::rl
