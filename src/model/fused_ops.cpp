#include "model/fused_ops.h"

#include <torch/torch.h>

#include "ops/kernel_launch.h"
#include "common/error.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "model/rotary.h"

namespace ovr::model {

namespace {

namespace K = kernels;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

bool kernel_dtype(const at::Tensor& t) { return t.scalar_type() == at::kFloat || t.scalar_type() == at::kBFloat16; }
K::DType dtype_of(const at::Tensor& t) { return t.scalar_type() == at::kBFloat16 ? K::DType::BF16 : K::DType::F32; }

struct RmsNormFn : torch::autograd::Function<RmsNormFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, double eps) {
    const c10::DeviceGuard guard(x.device());
    const at::Tensor xc = x.contiguous(), w = weight.contiguous();
    const int64_t D = x.size(-1), N = x.numel() / D;
    at::Tensor y = at::empty_like(xc), rstd = at::empty({N}, x.options().dtype(at::kFloat));
    K::RmsNormForwardArgs a;
    a.N = N, a.D = D, a.dtype = dtype_of(x), a.x = xc.data_ptr(), a.weight = w.data_ptr(), a.y = y.data_ptr();
    a.rstd = rstd.data_ptr<float>(), a.eps = float(eps);
    const ops::KernelLaunch on = ops::kernel_launch(xc);
    ops::run_kernel([&] { K::rmsnorm_forward(on.device, a, on.stream); });
    ctx->save_for_backward({xc, w, rstd});
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1], &rstd = saved[2];
    const c10::DeviceGuard guard(x.device());
    const at::Tensor dy = grads[0].to(x.scalar_type()).contiguous();
    const bool want_x = ctx->needs_input_grad(0), want_w = ctx->needs_input_grad(1);
    at::Tensor dx = at::empty_like(x);  // the kernel always writes dx
    at::Tensor dw = want_w ? at::empty({x.size(-1)}, x.options().dtype(at::kFloat)) : at::Tensor();
    K::RmsNormBackwardArgs a;
    a.N = rstd.numel(), a.D = x.size(-1), a.dtype = dtype_of(x), a.dy = dy.data_ptr(), a.x = x.data_ptr();
    a.weight = w.data_ptr(), a.rstd = rstd.data_ptr<float>(), a.dx = dx.data_ptr();
    a.dweight = want_w ? dw.data_ptr<float>() : nullptr;
    const ops::KernelLaunch on = ops::kernel_launch(x);
    ops::run_kernel([&] { K::rmsnorm_backward(on.device, a, on.stream); });
    return {want_x ? dx : at::Tensor(), want_w ? dw.to(w.scalar_type()) : at::Tensor(), at::Tensor()};
  }
};

struct SwiGluFn : torch::autograd::Function<SwiGluFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate, const at::Tensor& up) {
    const c10::DeviceGuard guard(gate.device());
    const at::Tensor g = gate.contiguous(), u = up.contiguous();
    at::Tensor y = at::empty_like(g);
    K::SwiGluForwardArgs a;
    a.n = g.numel(), a.dtype = dtype_of(g), a.gate = g.data_ptr(), a.up = u.data_ptr(), a.y = y.data_ptr();
    const ops::KernelLaunch on = ops::kernel_launch(g);
    ops::run_kernel([&] { K::swiglu_forward(on.device, a, on.stream); });
    ctx->save_for_backward({g, u});
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &g = saved[0], &u = saved[1];
    const c10::DeviceGuard guard(g.device());
    const at::Tensor dy = grads[0].to(g.scalar_type()).contiguous();
    at::Tensor d_gate = at::empty_like(g), d_up = at::empty_like(u);
    K::SwiGluBackwardArgs a;
    a.n = g.numel(), a.dtype = dtype_of(g), a.dy = dy.data_ptr(), a.gate = g.data_ptr(), a.up = u.data_ptr();
    a.d_gate = d_gate.data_ptr(), a.d_up = d_up.data_ptr();
    const ops::KernelLaunch on = ops::kernel_launch(g);
    ops::run_kernel([&] { K::swiglu_backward(on.device, a, on.stream); });
    return {d_gate, d_up};
  }
};

// q [T, Hq, hd], k [T, Hk, hd] contiguous, positions [A, T] int64 contiguous.
struct RopeFn : torch::autograd::Function<RopeFn> {
  static K::RopeArgs args(const at::Tensor& q, const at::Tensor& k, const at::Tensor& positions, double theta,
                          const std::vector<int64_t>& section) {
    K::RopeArgs a;
    a.tokens = q.size(0), a.heads_q = q.size(1), a.heads_k = k.size(1), a.head_dim = q.size(2), a.dtype = dtype_of(q);
    a.positions = positions.data_ptr<int64_t>(), a.axes = int(positions.size(0)), a.theta = float(theta);
    for (size_t i = 0; i < section.size() && i < 3; ++i) a.mrope_section[i] = section[i];
    return a;
  }
  static variable_list forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k,
                               const at::Tensor& positions, double theta, std::vector<int64_t> section) {
    const c10::DeviceGuard guard(q.device());
    at::Tensor qo = at::empty_like(q), ko = at::empty_like(k);
    K::RopeArgs a = args(q, k, positions, theta, section);
    a.q_in = q.data_ptr(), a.q_out = qo.data_ptr(), a.k_in = k.data_ptr(), a.k_out = ko.data_ptr();
    const ops::KernelLaunch on = ops::kernel_launch(q);
    ops::run_kernel([&] { K::rope_forward(on.device, a, on.stream); });
    ctx->save_for_backward({positions});
    ctx->saved_data["theta"] = theta;
    ctx->saved_data["section"] = c10::IntArrayRef(section);
    return {qo, ko};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor positions = ctx->get_saved_variables()[0];
    const std::vector<int64_t> section = ctx->saved_data["section"].toIntVector();
    const c10::DeviceGuard guard(positions.device());
    // An output that did not reach the loss has no gradient: zeros, so the kernel sees both.
    const at::Tensor dq = grads[0].contiguous(), dk = grads[1].contiguous();
    at::Tensor dqi = at::empty_like(dq), dki = at::empty_like(dk);
    K::RopeArgs a = args(dq, dk, positions, ctx->saved_data["theta"].toDouble(), section);
    a.q_in = dq.data_ptr(), a.q_out = dqi.data_ptr(), a.k_in = dk.data_ptr(), a.k_out = dki.data_ptr();
    const ops::KernelLaunch on = ops::kernel_launch(dq);
    ops::run_kernel([&] { K::rope_backward(on.device, a, on.stream); });
    return {dqi, dki, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

std::pair<at::Tensor, at::Tensor> apply_rope(const at::Tensor& q, const at::Tensor& k, const at::Tensor& positions,
                                             double theta, const std::vector<int64_t>& mrope_section) {
  const int64_t b = q.size(0), s = q.size(1), hd = q.size(3);
  at::Tensor pos = positions.dim() == 2 ? positions.unsqueeze(0) : positions;  // [A, B, S]
  if (!mrope_section.empty() && pos.size(0) != 3) throw Error("rotary: M-RoPE needs positions of shape [3, B, S]");
  if (mrope_section.empty()) pos = pos.narrow(0, 0, 1);
  if (!kernel_dtype(q) || k.scalar_type() != q.scalar_type() || q.numel() == 0 || k.numel() == 0) {
    // The plain way (model/rotary.h): tables [B, S, hd], broadcast over the heads of [B, S, H, hd].
    const RotaryTables t = rotary_tables(positions, hd, theta, mrope_section, q.scalar_type());
    const at::Tensor cos = t.cos.unsqueeze(2), sin = t.sin.unsqueeze(2);
    return {q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin};
  }
  const at::Tensor p = pos.reshape({pos.size(0), b * s}).to(at::kLong).contiguous();
  const auto out = RopeFn::apply(q.reshape({b * s, q.size(2), hd}).contiguous(),
                                 k.reshape({b * s, k.size(2), hd}).contiguous(), p, theta, mrope_section);
  return {out[0].view({b, s, q.size(2), hd}), out[1].view({b, s, k.size(2), hd})};
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  if (!kernel_dtype(x) || weight.scalar_type() != x.scalar_type() || weight.dim() != 1 ||
      weight.size(0) != x.size(-1) || x.numel() == 0) {
    at::Tensor h = x.to(at::kFloat);  // the plain way: fp32 whatever the compute dtype, as HF
    h = h * torch::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
    return weight * h.to(x.scalar_type());
  }
  return RmsNormFn::apply(x, weight, eps);
}

at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up) {
  if (!kernel_dtype(gate) || gate.scalar_type() != up.scalar_type() || gate.sizes() != up.sizes() || gate.numel() == 0)
    return torch::silu(gate) * up;
  return SwiGluFn::apply(gate, up);
}

}  // namespace ovr::model
