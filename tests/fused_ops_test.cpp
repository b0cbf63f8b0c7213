// RMSNorm and SwiGLU through kernels/ (model/fused_ops.h) against the plain LibTorch way, values
// and gradients, as the model uses them.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/fused_ops.h"
#include "model/rotary.h"

using namespace ovr;

namespace {

at::Tensor plain_rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) {
  at::Tensor h = x.to(at::kFloat);
  h = h * torch::rsqrt(h.pow(2).mean(-1, true) + eps);
  return w * h.to(x.scalar_type());
}

double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

}  // namespace

TEST(FusedOps, RmsNormValuesAndGradientsEqualThePlainWay) {
  torch::manual_seed(1);
  at::Tensor x = torch::randn({2, 5, 37}).requires_grad_(true), w = (1 + 0.1 * torch::randn({37})).requires_grad_(true);
  at::Tensor x2 = x.detach().clone().requires_grad_(true), w2 = w.detach().clone().requires_grad_(true);
  const at::Tensor dy = torch::randn({2, 5, 37});
  const at::Tensor y = model::rms_norm(x, w, 1e-6), ref = plain_rms_norm(x2, w2, 1e-6);
  EXPECT_LE(max_diff(y, ref), 1e-6);
  (y * dy).sum().backward();
  (ref * dy).sum().backward();
  EXPECT_LE(max_diff(x.grad(), x2.grad()), 1e-5);
  EXPECT_LE(max_diff(w.grad(), w2.grad()), 1e-5);
  // bf16 storage: rounded once, within a bf16 ulp or two of the plain way's two roundings.
  const at::Tensor xb = x.detach().to(at::kBFloat16), wb = w.detach().to(at::kBFloat16);
  EXPECT_LE(max_diff(model::rms_norm(xb, wb, 1e-6), plain_rms_norm(xb, wb, 1e-6)), 4e-2);
  // A dtype the kernel does not take goes the plain way.
  const at::Tensor xd = x.detach().to(at::kDouble), wd = w.detach().to(at::kDouble);
  EXPECT_EQ(max_diff(model::rms_norm(xd, wd, 1e-6), plain_rms_norm(xd, wd, 1e-6)), 0.0);
}

TEST(FusedOps, SwigluValuesAndGradientsEqualThePlainWay) {
  torch::manual_seed(2);
  at::Tensor g = (3 * torch::randn({4, 9, 13})).requires_grad_(true), u = torch::randn({4, 9, 13}).requires_grad_(true);
  at::Tensor g2 = g.detach().clone().requires_grad_(true), u2 = u.detach().clone().requires_grad_(true);
  const at::Tensor dy = torch::randn({4, 9, 13});
  const at::Tensor y = model::swiglu(g, u), ref = torch::silu(g2) * u2;
  EXPECT_LE(max_diff(y, ref), 1e-6);
  (y * dy).sum().backward();
  (ref * dy).sum().backward();
  EXPECT_LE(max_diff(g.grad(), g2.grad()), 1e-5);
  EXPECT_LE(max_diff(u.grad(), u2.grad()), 1e-5);
}

TEST(FusedOps, RopeValuesAndGradientsEqualTheRotaryTables) {
  torch::manual_seed(3);
  const int64_t B = 2, S = 7, hq = 4, hk = 2, hd = 16;
  // M-RoPE positions that differ by axis (an image's rows and columns), and plain 1-D RoPE.
  const at::Tensor pos3 = torch::randint(0, 50000, {3, B, S}, at::kLong);
  for (const bool mrope : {true, false}) {
    const std::vector<int64_t> section = mrope ? std::vector<int64_t>{2, 3, 3} : std::vector<int64_t>{};
    const at::Tensor pos = mrope ? pos3 : pos3[0];
    at::Tensor q = torch::randn({B, S, hq, hd}).requires_grad_(true), k = torch::randn({B, S, hk, hd}).requires_grad_(true);
    at::Tensor q2 = q.detach().clone().requires_grad_(true), k2 = k.detach().clone().requires_grad_(true);
    const auto [qr, kr] = model::apply_rope(q, k, pos, 1e6, section);
    const model::RotaryTables t = model::rotary_tables(pos, hd, 1e6, section, at::kFloat);
    const at::Tensor cos = t.cos.unsqueeze(2), sin = t.sin.unsqueeze(2);
    const at::Tensor qref = q2 * cos + model::rotate_half(q2) * sin, kref = k2 * cos + model::rotate_half(k2) * sin;
    // Angles up to 5e4 rad: fp32 angle and sincos rounding differ by a few ulp of the angle.
    EXPECT_LE(max_diff(qr, qref), 2e-3) << (mrope ? "M-RoPE" : "RoPE");
    EXPECT_LE(max_diff(kr, kref), 2e-3);
    const at::Tensor dq = torch::randn(qr.sizes()), dk = torch::randn(kr.sizes());
    ((qr * dq).sum() + (kr * dk).sum()).backward();
    ((qref * dq).sum() + (kref * dk).sum()).backward();
    EXPECT_LE(max_diff(q.grad(), q2.grad()), 2e-3);
    EXPECT_LE(max_diff(k.grad(), k2.grad()), 2e-3);
  }
  // Small positions: no large angles, the kernel and the tables agree to fp32 rounding.
  const at::Tensor small = torch::arange(S).view({1, 1, S}).expand({3, B, S}).contiguous();
  const at::Tensor q = torch::randn({B, S, hq, hd}), k = torch::randn({B, S, hk, hd});
  const auto [qr, kr] = model::apply_rope(q, k, small, 1e6, {2, 3, 3});
  const model::RotaryTables t = model::rotary_tables(small, hd, 1e6, {2, 3, 3}, at::kFloat);
  EXPECT_LE(max_diff(qr, q * t.cos.unsqueeze(2) + model::rotate_half(q) * t.sin.unsqueeze(2)), 1e-5);
}
