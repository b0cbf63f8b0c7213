// The fused log-prob as a LibTorch op (ops/fused_logprob_op.h) against the plain way: logits by
// matmul, log_softmax, gather, entropy from softmax, and autograd through all of it.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "ops/fused_logprob_op.h"

using namespace ovr;

namespace {

struct Plain {
  at::Tensor logprob, entropy;
};

Plain plain(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets) {
  const at::Tensor z = torch::matmul(hidden, weight.t());
  const at::Tensor logp = torch::log_softmax(z, -1);
  return {logp.gather(1, targets.unsqueeze(1)).squeeze(1), -(logp.exp() * logp).sum(-1)};
}

double max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

struct Inputs {
  at::Tensor hidden, weight, targets;
};

// Sizes that leave partial tiles in both directions of the default 1024 × 8192 tiling are not
// needed for the op (the kernel tests cover tiling); these cover a vocabulary over one tile.
Inputs inputs(int64_t T, int64_t V, int64_t H, uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({T, H}).requires_grad_(true), (0.3 * torch::randn({V, H})).requires_grad_(true),
          torch::randint(V, {T}, torch::kLong)};
}

}  // namespace

TEST(FusedLogprobOp, LogprobAndEntropyEqualThePlainWay) {
  Inputs in = inputs(37, 9000, 24, 1);
  const auto fused = ops::fused_logprob(in.hidden, in.weight, in.targets, true);
  const Plain ref = plain(in.hidden, in.weight, in.targets);
  EXPECT_EQ(fused.logprob.scalar_type(), at::kFloat);
  EXPECT_LE(max_diff(fused.logprob, ref.logprob), 1e-4);
  EXPECT_LE(max_diff(fused.entropy, ref.entropy), 1e-4);
  EXPECT_FALSE(ops::fused_logprob(in.hidden, in.weight, in.targets).entropy.defined());
}

TEST(FusedLogprobOp, GradientsOfAnyLossOfLogprobAndEntropyEqualAutograd) {
  Inputs a = inputs(29, 9000, 16, 2), b = inputs(29, 9000, 16, 2);
  const at::Tensor w_logp = torch::randn({29}), w_ent = torch::randn({29});
  const auto fused = ops::fused_logprob(a.hidden, a.weight, a.targets, true);
  (fused.logprob * w_logp + fused.entropy * w_ent).sum().backward();
  const Plain ref = plain(b.hidden, b.weight, b.targets);
  (ref.logprob * w_logp + ref.entropy * w_ent).sum().backward();
  EXPECT_LE(max_diff(a.hidden.grad(), b.hidden.grad()), 1e-4);
  EXPECT_LE(max_diff(a.weight.grad(), b.weight.grad()), 1e-4);
  EXPECT_GT(b.weight.grad().abs().max().item<double>(), 1e-2);  // a real gradient, not zeros on both sides
}

TEST(FusedLogprobOp, FrozenWeightGetsNoGradientAndBf16InputsKeepTheirDtype) {
  Inputs in = inputs(11, 300, 8, 3);
  at::Tensor weight = in.weight.detach().to(at::kBFloat16);  // frozen, as the critic's lm_head
  at::Tensor hidden = in.hidden.detach().to(at::kBFloat16).requires_grad_(true);
  ops::fused_logprob(hidden, weight, in.targets).logprob.sum().backward();
  ASSERT_TRUE(hidden.grad().defined());
  EXPECT_EQ(hidden.grad().scalar_type(), at::kBFloat16);
  EXPECT_FALSE(weight.grad().defined());
  // Against the plain way on the same bf16-rounded values, in fp32.
  at::Tensor h32 = hidden.detach().to(at::kFloat).requires_grad_(true);
  plain(h32, weight.to(at::kFloat), in.targets).logprob.sum().backward();
  EXPECT_LE(max_diff(hidden.grad().to(at::kFloat), h32.grad()), 2e-2);  // bf16 rounding of the gradient
}

TEST(FusedLogprobOp, BadInputsGiveOneClearError) {
  Inputs in = inputs(4, 10, 3, 4);
  try {
    ops::fused_logprob(in.hidden, in.weight, torch::tensor({0, 1, 10, 2}, torch::kLong));
    FAIL() << "a target outside the vocabulary was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("target"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ops::fused_logprob(in.hidden, in.weight.t(), in.targets), Error);
  EXPECT_THROW(ops::fused_logprob(in.hidden, in.weight, in.targets.narrow(0, 0, 3)), Error);
}

TEST(FusedNllSum, LossAndScaledGradientsEqualThePlainWay) {
  Inputs a = inputs(23, 700, 12, 5), b = inputs(23, 700, 12, 5);
  const at::Tensor loss = ops::fused_nll_sum(a.hidden, a.weight, a.targets);
  (0.25 * loss).backward();  // the trainer divides the sum by the token count: the scale must reach the gradients
  const at::Tensor ref = -plain(b.hidden, b.weight, b.targets).logprob.sum();
  (0.25 * ref).backward();
  EXPECT_NEAR(loss.item<double>(), ref.item<double>(), 1e-4);
  EXPECT_LE(max_diff(a.hidden.grad(), b.hidden.grad()), 1e-5);
  EXPECT_LE(max_diff(a.weight.grad(), b.weight.grad()), 1e-5);
  // No gradient wanted (evaluation): the same value, and nothing held for a backward.
  torch::NoGradGuard no_grad;
  EXPECT_NEAR(ops::fused_nll_sum(a.hidden, a.weight, a.targets).item<double>(), ref.item<double>(), 1e-4);
  // No targets in a micro-batch: a zero loss with zero gradients.
  EXPECT_EQ(ops::fused_nll_sum(a.hidden.narrow(0, 0, 0), a.weight, a.targets.narrow(0, 0, 0)).item<double>(), 0.0);
}
