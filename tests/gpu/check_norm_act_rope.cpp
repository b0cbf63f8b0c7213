// GPU check of RMSNorm, SwiGLU and (M-)RoPE at Qwen2.5-7B sizes: each CUDA kernel against its CPU
// twin (inputs copied to the host) and against a plain LibTorch implementation on the GPU written
// the way Hugging Face computes it, both timed. Errors are relative: max |a - b| / max |reference|.
// The kernels are memory-bound, so each row's `bytes` is the least they must move (every input read
// once, every output written once) and the table's bandwidth is bytes / ms.
#include <ATen/ATen.h>

#include <algorithm>
#include <string>
#include <vector>

#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "tests/gpu/kernel_check.h"

namespace ovr::gpucheck {

namespace {

namespace k = ovr::kernels;

constexpr int64_t kTokens = 16384, kHidden = 3584, kInter = 18944;  // Qwen2.5-7B, a 16k-token step
constexpr int64_t kHeadsQ = 28, kHeadsK = 4, kHeadDim = 128;
constexpr float kEps = 1e-6f, kTheta = 1000000.0f;

k::DType dtype_of(const at::Tensor& t) { return t.scalar_type() == at::kBFloat16 ? k::DType::BF16 : k::DType::F32; }
const char* name_of(const at::Tensor& t) { return t.scalar_type() == at::kBFloat16 ? "bf16" : "f32"; }
double esize(const at::Tensor& t) { return static_cast<double>(t.element_size()); }

// max |a - b| / max |ref| (ref is b).
double rel(const at::Tensor& a, const at::Tensor& b) {
  return max_abs_diff(a, b) / std::max(b.abs().max().to(at::kDouble).item<double>(), 1e-30);
}

// An output rounded to bf16 can sit one ulp (2^-8 relative) from the twin's; LibTorch's bf16 path
// rounds two or three intermediates on top. fp32: reduction order only.
double tol_of(const at::Tensor& t) { return t.scalar_type() == at::kBFloat16 ? 2e-2 : 2e-5; }

at::TensorOptions cuda_opts(at::ScalarType dt) { return at::TensorOptions().dtype(dt).device(at::kCUDA); }

// ---------------------------------------------------------------------------------------------- RMSNorm

// src/model/qwen2.cpp's RMSNormImpl (= HF's Qwen2RMSNorm).
at::Tensor rmsnorm_torch(const at::Tensor& x, const at::Tensor& w) {
  at::Tensor h = x.to(at::kFloat);
  h = h * at::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + kEps);
  return w * h.to(x.scalar_type());
}

// HF's graph differentiated as autograd does: dweight = sum over rows of dy * h (h rounded to the
// input dtype as in the forward; summed in fp32 here), dx through the fp32 normalisation.
std::pair<at::Tensor, at::Tensor> rmsnorm_backward_torch(const at::Tensor& dy, const at::Tensor& x, const at::Tensor& w) {
  const at::Tensor xf = x.to(at::kFloat);
  const at::Tensor rstd = at::rsqrt(xf.pow(2).mean(-1, true) + kEps);
  const at::Tensor h = (xf * rstd).to(x.scalar_type());
  at::Tensor dw = (dy.to(at::kFloat) * h.to(at::kFloat)).sum(0);
  const at::Tensor dh = (dy * w).to(at::kFloat);
  at::Tensor dx = (rstd * (dh - xf * rstd.pow(2) * (dh * xf).mean(-1, true))).to(x.scalar_type());
  return {dx, dw};
}

void check_rmsnorm(at::ScalarType dt) {
  const int64_t N = kTokens, D = kHidden;
  const at::Tensor x = at::randn({N, D}, cuda_opts(at::kFloat)).mul_(2.0).to(dt);
  const at::Tensor w = (1.0 + 0.1 * at::randn({D}, cuda_opts(at::kFloat))).to(dt);
  const at::Tensor dy = at::randn({N, D}, cuda_opts(at::kFloat)).to(dt);
  at::Tensor y = at::empty_like(x), dx = at::empty_like(x);
  at::Tensor rstd = at::empty({N}, cuda_opts(at::kFloat)), dw = at::empty({D}, cuda_opts(at::kFloat));

  k::RmsNormForwardArgs f;
  f.N = N, f.D = D, f.dtype = dtype_of(x), f.eps = kEps;
  f.x = x.data_ptr(), f.weight = w.data_ptr(), f.y = y.data_ptr(), f.rstd = rstd.data_ptr<float>();
  k::RmsNormBackwardArgs b;
  b.N = N, b.D = D, b.dtype = dtype_of(x);
  b.dy = dy.data_ptr(), b.x = x.data_ptr(), b.weight = w.data_ptr(), b.rstd = rstd.data_ptr<float>();
  b.dx = dx.data_ptr(), b.dweight = dw.data_ptr<float>();
  k::rmsnorm_forward(k::Device::CUDA, f, stream());
  k::rmsnorm_backward(k::Device::CUDA, b, stream());

  // The CPU twin on host copies.
  const at::Tensor xh = x.cpu(), wh = w.cpu(), dyh = dy.cpu();
  at::Tensor yh = at::empty_like(xh), dxh = at::empty_like(xh);
  at::Tensor rstdh = at::empty({N}, at::kFloat), dwh = at::empty({D}, at::kFloat);
  k::RmsNormForwardArgs fh = f;
  fh.x = xh.data_ptr(), fh.weight = wh.data_ptr(), fh.y = yh.data_ptr(), fh.rstd = rstdh.data_ptr<float>();
  k::rmsnorm_forward(k::Device::CPU, fh);
  k::RmsNormBackwardArgs bh = b;
  bh.dy = dyh.data_ptr(), bh.x = xh.data_ptr(), bh.weight = wh.data_ptr(), bh.rstd = rstdh.data_ptr<float>();
  bh.dx = dxh.data_ptr(), bh.dweight = dwh.data_ptr<float>();
  k::rmsnorm_backward(k::Device::CPU, bh);

  const at::Tensor yt = rmsnorm_torch(x, w);
  const auto [dxt, dwt] = rmsnorm_backward_torch(dy, x, w);
  const std::string shape = std::string(name_of(x)) + " " + std::to_string(N) + "x" + std::to_string(D);
  const double es = esize(x);

  Row fwd;
  fwd.kernel = "rmsnorm fwd " + shape;
  fwd.err_cpu = std::max(rel(y, yh), rel(rstd, rstdh));
  fwd.err_torch = rel(y, yt);
  fwd.tol = tol_of(x);
  fwd.ms = time_ms([&] { k::rmsnorm_forward(k::Device::CUDA, f, stream()); });
  fwd.torch_ms = time_ms([&] { (void)rmsnorm_torch(x, w); });
  fwd.bytes = 2 * N * D * es + D * es + N * 4.0;  // x, w in; y, rstd out
  fwd.note = "errors relative to max |y| (and rstd vs the twin)";
  report(fwd);

  Row bwd;
  bwd.kernel = "rmsnorm bwd " + shape;
  bwd.err_cpu = std::max(rel(dx, dxh), rel(dw, dwh));
  bwd.err_torch = std::max(rel(dx, dxt), rel(dw, dwt));
  bwd.tol = tol_of(x);
  bwd.ms = time_ms([&] { k::rmsnorm_backward(k::Device::CUDA, b, stream()); });
  bwd.torch_ms = time_ms([&] { (void)rmsnorm_backward_torch(dy, x, w); });
  bwd.bytes = 3 * N * D * es + D * es + N * 4.0 + D * 4.0;  // dy, x, w, rstd in; dx, dweight out
  bwd.note = "max of dx and dweight errors; dweight deterministic (two-pass, no atomics)";
  report(bwd);
}

// ---------------------------------------------------------------------------------------------- SwiGLU

at::Tensor swiglu_torch(const at::Tensor& g, const at::Tensor& u) { return at::silu(g) * u; }

// What autograd runs for silu(g) * u: d_up = dy * silu(g), d_gate = silu_backward(dy * u, g).
std::pair<at::Tensor, at::Tensor> swiglu_backward_torch(const at::Tensor& dy, const at::Tensor& g, const at::Tensor& u) {
  return {at::silu_backward(dy * u, g), dy * at::silu(g)};
}

void check_swiglu() {
  const int64_t n = kTokens * kInter;
  const at::Tensor g = at::randn({n}, cuda_opts(at::kBFloat16)).mul_(3.0);
  const at::Tensor u = at::randn({n}, cuda_opts(at::kBFloat16));
  const at::Tensor dy = at::randn({n}, cuda_opts(at::kBFloat16));
  at::Tensor y = at::empty_like(g), dg = at::empty_like(g), du = at::empty_like(g);
  k::SwiGluForwardArgs f;
  f.n = n, f.dtype = k::DType::BF16, f.gate = g.data_ptr(), f.up = u.data_ptr(), f.y = y.data_ptr();
  k::SwiGluBackwardArgs b;
  b.n = n, b.dtype = k::DType::BF16, b.dy = dy.data_ptr(), b.gate = g.data_ptr(), b.up = u.data_ptr();
  b.d_gate = dg.data_ptr(), b.d_up = du.data_ptr();
  k::swiglu_forward(k::Device::CUDA, f, stream());
  k::swiglu_backward(k::Device::CUDA, b, stream());

  const at::Tensor gh = g.cpu(), uh = u.cpu(), dyh = dy.cpu();
  at::Tensor yh = at::empty_like(gh), dgh = at::empty_like(gh), duh = at::empty_like(gh);
  k::SwiGluForwardArgs fh = f;
  fh.gate = gh.data_ptr(), fh.up = uh.data_ptr(), fh.y = yh.data_ptr();
  k::swiglu_forward(k::Device::CPU, fh);
  k::SwiGluBackwardArgs bh = b;
  bh.dy = dyh.data_ptr(), bh.gate = gh.data_ptr(), bh.up = uh.data_ptr(), bh.d_gate = dgh.data_ptr(), bh.d_up = duh.data_ptr();
  k::swiglu_backward(k::Device::CPU, bh);

  const at::Tensor yt = swiglu_torch(g, u);
  const auto [dgt, dut] = swiglu_backward_torch(dy, g, u);
  const std::string shape = "bf16 " + std::to_string(kTokens) + "x" + std::to_string(kInter);

  Row fwd;
  fwd.kernel = "swiglu fwd " + shape;
  fwd.err_cpu = rel(y, yh);
  fwd.err_torch = rel(y, yt);
  fwd.tol = tol_of(g);
  fwd.ms = time_ms([&] { k::swiglu_forward(k::Device::CUDA, f, stream()); });
  fwd.torch_ms = time_ms([&] { (void)swiglu_torch(g, u); });
  fwd.bytes = 3.0 * n * 2;
  fwd.note = "errors relative to max |y|; LibTorch rounds silu(g) to bf16 first";
  report(fwd);

  Row bwd;
  bwd.kernel = "swiglu bwd " + shape;
  bwd.err_cpu = std::max(rel(dg, dgh), rel(du, duh));
  bwd.err_torch = std::max(rel(dg, dgt), rel(du, dut));
  bwd.tol = tol_of(g);
  bwd.ms = time_ms([&] { k::swiglu_backward(k::Device::CUDA, b, stream()); });
  bwd.torch_ms = time_ms([&] { (void)swiglu_backward_torch(dy, g, u); });
  bwd.bytes = 5.0 * n * 2;
  bwd.note = "max of d_gate and d_up errors";
  report(bwd);
}

// ---------------------------------------------------------------------------------------------- RoPE

// src/model/rotary.cpp's tables (= HF's Qwen2.5-VL M-RoPE): [T, head_dim] cos and sin in `dt`.
std::pair<at::Tensor, at::Tensor> rope_tables_torch(const at::Tensor& pos, const std::vector<int64_t>& section,
                                                    at::ScalarType dt) {
  const at::Tensor inv_freq =
      at::pow(static_cast<double>(kTheta), at::arange(0, kHeadDim, 2, cuda_opts(at::kFloat)) / double(kHeadDim))
          .reciprocal();
  const at::Tensor freqs = pos.to(at::kFloat).unsqueeze(-1) * inv_freq;  // [3, T, half]
  std::vector<at::Tensor> parts;
  int64_t at_dim = 0;
  for (int axis = 0; axis < 3; ++axis) {
    parts.push_back(freqs[axis].narrow(-1, at_dim, section[axis]));
    at_dim += section[axis];
  }
  const at::Tensor f = at::cat(parts, -1);
  const at::Tensor emb = at::cat({f, f}, -1);
  return {emb.cos().to(dt), emb.sin().to(dt)};
}

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// x [T, heads, head_dim]; sign -1: the backward (dy cos - rotate_half(dy sin), autograd's transpose).
at::Tensor rope_torch(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, bool backward) {
  const at::Tensor c = cos.unsqueeze(1), s = sin.unsqueeze(1);
  return backward ? x * c - rotate_half(x * s) : x * c + rotate_half(x) * s;
}

void check_rope() {
  const int64_t T = kTokens;
  const std::vector<int64_t> section = {16, 24, 24};
  // Positions as in a long multimodal sequence: the temporal axis runs to ~48k, height and width stay small.
  const at::Tensor pos = at::stack({at::arange(T, cuda_opts(at::kLong)) * 3,
                                    at::randint(0, 64, {T}, cuda_opts(at::kLong)),
                                    at::randint(0, 64, {T}, cuda_opts(at::kLong))})
                             .contiguous();
  const at::Tensor q = at::randn({T, kHeadsQ, kHeadDim}, cuda_opts(at::kBFloat16));
  const at::Tensor kk = at::randn({T, kHeadsK, kHeadDim}, cuda_opts(at::kBFloat16));
  const auto [cos, sin] = rope_tables_torch(pos, section, at::kBFloat16);
  const at::Tensor posh = pos.cpu(), qh = q.cpu(), kh = kk.cpu();

  for (bool backward : {false, true}) {
    at::Tensor qo = at::empty_like(q), ko = at::empty_like(kk);
    k::RopeArgs a;
    a.tokens = T, a.heads_q = kHeadsQ, a.heads_k = kHeadsK, a.head_dim = kHeadDim, a.dtype = k::DType::BF16;
    a.axes = 3, a.theta = kTheta;
    std::copy(section.begin(), section.end(), a.mrope_section);
    a.positions = pos.data_ptr<int64_t>();
    a.q_in = q.data_ptr(), a.q_out = qo.data_ptr(), a.k_in = kk.data_ptr(), a.k_out = ko.data_ptr();
    auto run = [&](k::Device d, const k::RopeArgs& args) {
      backward ? k::rope_backward(d, args, stream()) : k::rope_forward(d, args, stream());
    };
    run(k::Device::CUDA, a);

    at::Tensor qoh = at::empty_like(qh), koh = at::empty_like(kh);
    k::RopeArgs ah = a;
    ah.positions = posh.data_ptr<int64_t>();
    ah.q_in = qh.data_ptr(), ah.q_out = qoh.data_ptr(), ah.k_in = kh.data_ptr(), ah.k_out = koh.data_ptr();
    run(k::Device::CPU, ah);

    const at::Tensor qt = rope_torch(q, cos, sin, backward), kt = rope_torch(kk, cos, sin, backward);
    Row r;
    r.kernel = std::string("rope ") + (backward ? "bwd" : "fwd") + " bf16 " + std::to_string(T) + "x(" +
               std::to_string(kHeadsQ) + "+" + std::to_string(kHeadsK) + ")x" + std::to_string(kHeadDim) + " mrope";
    r.err_cpu = std::max(rel(qo, qoh), rel(ko, koh));
    r.err_torch = std::max(rel(qo, qt), rel(ko, kt));
    r.tol = tol_of(q);
    r.ms = time_ms([&] { run(k::Device::CUDA, a); });
    r.torch_ms = time_ms([&] {
      (void)rope_torch(q, cos, sin, backward);
      (void)rope_torch(kk, cos, sin, backward);
    });
    r.bytes = 2.0 * T * (kHeadsQ + kHeadsK) * kHeadDim * 2 + 3.0 * T * 8;  // q, k in and out; positions
    r.note = "q and k in one launch, angles in-kernel; LibTorch time excludes its cos/sin tables (built once per step)";
    report(r);
  }
}

}  // namespace

void check_norm_act_rope() {
  check_rmsnorm(at::kBFloat16);
  check_rmsnorm(at::kFloat);
  check_swiglu();
  check_rope();
}

}  // namespace ovr::gpucheck
