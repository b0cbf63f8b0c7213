// The PPO objective: advantages by GAE, batch whitening, the clipped policy surrogate, the clipped
// value loss, and the optional KL-penalty term (Open-Reasoner-Zero recipe); the entropy bonus comes
// with the log-probs from the fused kernel (train::target_logprobs).
//
// Every loss here returns a SUM over tokens, never a mean: the caller divides by the number of
// response tokens of the whole global batch (all micro-batches, all ranks), so every token weighs
// the same whatever sequence or micro-batch it sits in (token-level mean, as in Open-Reasoner-Zero
// and DAPO). Tensors are 1-D over response tokens, sequences laid out one after another.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace ovr::rl {

// ---- Generalised advantage estimation (Schulman et al. 2016) ----

struct Advantages {
  at::Tensor advantages;  // A_t
  at::Tensor returns;     // A_t + V_t: the critic's regression target
};

// rewards, values: 1-D, one entry per response token of every sequence; sequence i occupies
// [offsets[i], offsets[i+1]) (offsets starts at 0 and ends at the token count; an empty
// sequence is allowed). values[t] is V(state before emitting token t); the state after a
// sequence's last token is terminal, V = 0.
//   delta_t = r_t + gamma * V_{t+1} - V_t,   A_t = delta_t + gamma * lambda * A_{t+1}
// With the reward only on the last token and gamma = lambda = 1 the deltas telescope:
// A_t = R - V_t and returns_t = R (the Open-Reasoner-Zero setting).
// Computed by kernels/gae.h on the device of `rewards` (fp32 inputs, accumulated in double; on
// CUDA a parallel scan per sequence, no host round trip); the results have the dtype and device
// of `rewards`. Throws ovr::Error on inconsistent shapes or
// offsets, or gamma / lambda outside [0, 1].
Advantages gae(const at::Tensor& rewards, const at::Tensor& values, const std::vector<int64_t>& offsets,
               double gamma, double lambda);

// ---- Whitening with batch statistics ----
// The statistics are sums so that the caller can all-reduce them across ranks before turning
// them into a mean and a standard deviation: every rank then whitens with the global batch's.

struct MeanStd {
  double mean, std;
};

// Adds sum(x), sum(x^2) and numel(x) (accumulated in double) to *sum, *sumsq and *count.
void add_moments(const at::Tensor& x, double* sum, double* sumsq, int64_t* count);
// The POPULATION standard deviation (divides by count, not count - 1). {0, 0} when count is 0.
MeanStd moments(double sum, double sumsq, int64_t count);
// (x - mean) / (std + eps), in the dtype of x.
at::Tensor whiten(const at::Tensor& x, double mean, double std, double eps = 1e-8);

// ---- Clipped policy surrogate (Schulman et al. 2017) ----

struct PolicyLossOptions {
  // The ratio is clipped to [1 - clip_low, 1 + clip_high]; a larger clip_high ("clip-higher",
  // DAPO) lets unlikely tokens with positive advantage grow faster.
  double clip_low = 0.2, clip_high = 0.2;
  // 0 = off, else c > 1 (Ye et al. 2020): for negative advantages the loss is capped at -c * A,
  // so a token whose ratio has run far above 1 cannot dominate the update.
  double dual_clip = 0;
};

struct PolicyLoss {
  at::Tensor loss_sum;        // scalar, differentiable w.r.t. logprobs
  int64_t clipped = 0;        // tokens whose loss is a clipped constant (zero gradient), dual clip included
  int64_t dual_clipped = 0;   // of those, the tokens capped by the dual clip
  double approx_kl_sum = 0;   // sum of k3 = (ratio - 1) - log ratio, estimates KL(old || new); >= 0
  double ratio_max = 0;       // largest ratio (0 for no tokens)
};

// ratio = exp(logprobs - old_logprobs); the loss to MINIMISE, per token,
//   loss = -min(ratio * A, clamp(ratio, 1 - clip_low, 1 + clip_high) * A)
//        = max(-ratio * A, -clamp(ratio, ...) * A)
// and with the dual clip, for A < 0 only: loss = min(loss, -dual_clip * A).
// So for A > 0 the ratio is clipped above (no gain from pushing it past 1 + clip_high), for
// A < 0 below; the clipped term only wins where it is the pessimistic one, so a ratio already
// beyond the range on the side that hurts the objective keeps its gradient. Inside the range
// d loss / d logprob = -ratio * A. The log-ratio is clamped to [-20, 20] first (as verl does)
// so that exp cannot overflow; past it the gradient is zero.
// logprobs, old_logprobs, advantages: same shape; computed in float32 (double stays double).
PolicyLoss policy_loss(const at::Tensor& logprobs, const at::Tensor& old_logprobs, const at::Tensor& advantages,
                       const PolicyLossOptions& options);

// ---- Clipped value loss ----

struct ValueLoss {
  at::Tensor loss_sum;  // scalar, differentiable w.r.t. values
  int64_t clipped = 0;  // tokens where the clipped term was the larger one (zero gradient)
};

// Per token 0.5 * max((v - R)^2, (old + clamp(v - old, -clip, clip) - R)^2), summed: the critic
// may not move a value more than `clip` from the one it had at rollout time when that movement
// is what reduces the error. clip <= 0: plain 0.5 * (v - R)^2.
ValueLoss value_loss(const at::Tensor& values, const at::Tensor& old_values, const at::Tensor& returns, double clip);

// ---- Optional terms (off by default in the trainer) ----

// Sum over tokens of the k3 estimator of KL(policy || reference) for tokens sampled from the
// policy: exp(ref - logp) - (ref - logp) - 1. Unbiased, always >= 0, lower variance than
// logp - ref. Differentiable w.r.t. logprobs; the log-ratio is clamped to [-20, 20] as above.
at::Tensor kl_penalty_sum(const at::Tensor& logprobs, const at::Tensor& ref_logprobs);

}  // namespace ovr::rl
