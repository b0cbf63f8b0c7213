// RMSNorm, SwiGLU and (M-)RoPE kernels (CPU twins) against plain double-precision references written
// here: forward and backward, fp32 and bf16 (the reference gets the same bf16-rounded inputs), the
// references' gradients against central differences, in-place calls, and bad arguments.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <stdexcept>
#include <vector>

#include "kernels/bf16.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"

using namespace ovr::kernels;

namespace {

// Values in the storage type: fp32 as is, bf16 as uint16_t. `values` are what the kernel sees
// (already rounded to bf16 for BF16), so a reference can take them as exact inputs.
struct Buf {
  DType dtype;
  std::vector<float> f32;
  std::vector<uint16_t> b16;
  Buf(DType dt, const std::vector<float>& v) : dtype(dt) { set(v); }
  void set(const std::vector<float>& v) {
    if (dtype == DType::F32) {
      f32 = v;
    } else {
      b16.resize(v.size());
      for (size_t i = 0; i < v.size(); ++i) b16[i] = float_to_bf16(v[i]);
    }
  }
  std::vector<float> values() const {
    if (dtype == DType::F32) return f32;
    std::vector<float> v(b16.size());
    for (size_t i = 0; i < v.size(); ++i) v[i] = bf16_to_float(b16[i]);
    return v;
  }
  void* data() { return dtype == DType::F32 ? static_cast<void*>(f32.data()) : static_cast<void*>(b16.data()); }
  size_t size() const { return dtype == DType::F32 ? f32.size() : b16.size(); }
};

std::vector<float> randn(size_t n, unsigned seed, float scale = 1.0f, float mean = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(mean, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// max |a - b| / max(max |b|, scale): relative to the size of the reference, or to `scale` where the
// result is a difference of larger terms.
double rel_error(const std::vector<float>& a, const std::vector<double>& b, double scale = 1e-30) {
  EXPECT_EQ(a.size(), b.size());
  double err = 0, ref = scale;
  for (size_t i = 0; i < b.size(); ++i) {
    err = std::max(err, std::abs(a[i] - b[i]));
    ref = std::max(ref, std::abs(b[i]));
  }
  return err / ref;
}

// An output rounded to bf16 is within half an ulp (2^-9 relative) of the fp32 result; the fp32 math
// itself adds ~1e-6. fp32 outputs: a few ulp.
double tol(DType dt) { return dt == DType::BF16 ? 4.0e-3 : 2.0e-6; }

// Central differences of f at x, element by element.
std::vector<double> numeric_grad(const std::function<double(const std::vector<double>&)>& f, std::vector<double> x,
                                 double eps = 1e-6) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + eps;
    const double fp = f(x);
    x[i] = x0 - eps;
    const double fm = f(x);
    x[i] = x0;
    g[i] = (fp - fm) / (2 * eps);
  }
  return g;
}

double max_rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double err = 0, ref = 1e-30;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::abs(a[i] - b[i]));
    ref = std::max(ref, std::abs(b[i]));
  }
  return err / ref;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// ---------------------------------------------------------------------------------------------- RMSNorm

struct RmsRef {
  std::vector<double> y, rstd, dx, dw;
  double dx_terms = 0;  // max |rstd dy w|: dx is a difference of terms this size (it cancels when D = 1)
};

RmsRef rms_reference(const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>& dy,
                     int64_t N, int64_t D, double eps) {
  RmsRef r{std::vector<double>(N * D), std::vector<double>(N), std::vector<double>(N * D), std::vector<double>(D, 0.0)};
  for (int64_t n = 0; n < N; ++n) {
    double ss = 0, dt = 0;
    for (int64_t j = 0; j < D; ++j) ss += x[n * D + j] * x[n * D + j];
    const double rs = 1.0 / std::sqrt(ss / D + eps);
    r.rstd[n] = rs;
    for (int64_t j = 0; j < D; ++j) {
      r.y[n * D + j] = w[j] * x[n * D + j] * rs;
      dt += dy[n * D + j] * w[j] * x[n * D + j];
    }
    for (int64_t j = 0; j < D; ++j) {
      r.dx[n * D + j] = rs * (dy[n * D + j] * w[j] - x[n * D + j] * rs * rs * dt / D);
      r.dx_terms = std::max(r.dx_terms, std::abs(rs * dy[n * D + j] * w[j]));
      r.dw[j] += dy[n * D + j] * x[n * D + j] * rs;
    }
  }
  return r;
}

struct RmsOut {
  std::vector<float> y, rstd, dx, dw;
};

RmsOut run_rmsnorm(DType dt, int64_t N, int64_t D, Buf& x, Buf& w, Buf& dy, float eps) {
  Buf y(dt, std::vector<float>(N * D)), dx(dt, std::vector<float>(N * D));
  RmsOut o{{}, std::vector<float>(N), {}, std::vector<float>(D, 123.0f)};
  RmsNormForwardArgs f;
  f.N = N, f.D = D, f.dtype = dt, f.x = x.data(), f.weight = w.data(), f.y = y.data(), f.rstd = o.rstd.data();
  f.eps = eps;
  rmsnorm_forward(Device::CPU, f);
  RmsNormBackwardArgs b;
  b.N = N, b.D = D, b.dtype = dt, b.dy = dy.data(), b.x = x.data(), b.weight = w.data(), b.rstd = o.rstd.data();
  b.dx = dx.data(), b.dweight = o.dw.data();
  rmsnorm_backward(Device::CPU, b);
  o.y = y.values();
  o.dx = dx.values();
  return o;
}

TEST(RmsNormKernel, forward_and_backward_match_double_reference) {
  struct Shape {
    int64_t N, D;
  };
  unsigned seed = 1;
  for (DType dt : {DType::F32, DType::BF16})
    for (Shape s : {Shape{1, 1}, Shape{3, 7}, Shape{5, 64}, Shape{17, 1000}, Shape{4, 130}, Shape{64, 3584}}) {
      SCOPED_TRACE(testing::Message() << "N=" << s.N << " D=" << s.D << " bf16=" << (dt == DType::BF16));
      std::vector<float> xv = randn(s.N * s.D, seed++);
      for (int64_t n = 0; n < s.N; ++n)  // rows of different scales
        for (int64_t j = 0; j < s.D; ++j) xv[n * s.D + j] *= std::pow(4.0f, static_cast<float>(n % 5) - 2);
      Buf x(dt, xv), w(dt, randn(s.D, seed++, 0.5f, 1.0f)), dy(dt, randn(s.N * s.D, seed++));
      const float eps = 1e-6f;
      const RmsOut o = run_rmsnorm(dt, s.N, s.D, x, w, dy, eps);
      const RmsRef r = rms_reference(to_double(x.values()), to_double(w.values()), to_double(dy.values()), s.N, s.D, eps);
      EXPECT_LE(rel_error(o.y, r.y), tol(dt));
      // rstd and dweight are fp32 whatever the dtype; per row, rstd is relative to its own size.
      for (int64_t n = 0; n < s.N; ++n) EXPECT_NEAR(o.rstd[n], r.rstd[n], 2e-6 * r.rstd[n]);
      EXPECT_LE(rel_error(o.dx, r.dx, r.dx_terms), tol(dt));
      EXPECT_LE(rel_error(o.dw, r.dw), 2e-6);
    }
}

TEST(RmsNormKernel, reference_gradients_match_central_differences) {
  const int64_t N = 3, D = 6;
  const double eps = 1e-6;
  const std::vector<double> x = to_double(randn(N * D, 7)), w = to_double(randn(D, 8, 0.5f, 1.0f)),
                            dy = to_double(randn(N * D, 9));
  const RmsRef r = rms_reference(x, w, dy, N, D, eps);
  auto loss_x = [&](const std::vector<double>& xx) { return dot(rms_reference(xx, w, dy, N, D, eps).y, dy); };
  auto loss_w = [&](const std::vector<double>& ww) { return dot(rms_reference(x, ww, dy, N, D, eps).y, dy); };
  EXPECT_LE(max_rel_diff(r.dx, numeric_grad(loss_x, x)), 1e-8);
  EXPECT_LE(max_rel_diff(r.dw, numeric_grad(loss_w, w)), 1e-8);
}

TEST(RmsNormKernel, dweight_accumulates_or_is_skipped_and_in_place_works) {
  const int64_t N = 9, D = 40;
  for (DType dt : {DType::F32, DType::BF16}) {
    Buf x(dt, randn(N * D, 1)), w(dt, randn(D, 2, 0.5f, 1.0f)), dy(dt, randn(N * D, 3));
    const RmsOut o = run_rmsnorm(dt, N, D, x, w, dy, 1e-5f);
    // In place: y over x, dx over dy, dweight added to 2.
    Buf xi = x, dyi = dy;
    std::vector<float> rstd(N), dw(D, 2.0f);
    RmsNormForwardArgs f;
    f.N = N, f.D = D, f.dtype = dt, f.x = xi.data(), f.weight = w.data(), f.y = xi.data(), f.rstd = rstd.data();
    f.eps = 1e-5f;
    rmsnorm_forward(Device::CPU, f);
    EXPECT_EQ(xi.values(), o.y);
    EXPECT_EQ(rstd, o.rstd);
    RmsNormBackwardArgs b;
    b.N = N, b.D = D, b.dtype = dt, b.dy = dyi.data(), b.x = x.data(), b.weight = w.data(), b.rstd = rstd.data();
    b.dx = dyi.data(), b.dweight = dw.data(), b.accumulate = true;
    rmsnorm_backward(Device::CPU, b);
    EXPECT_EQ(dyi.values(), o.dx);
    for (int64_t j = 0; j < D; ++j) EXPECT_NEAR(dw[j], o.dw[j] + 2.0f, 1e-5f);
    // Without dweight: dx alone.
    Buf dx(dt, std::vector<float>(N * D));
    b.dy = dy.data(), b.dx = dx.data(), b.dweight = nullptr;
    rmsnorm_backward(Device::CPU, b);
    EXPECT_EQ(dx.values(), o.dx);
  }
}

TEST(RmsNormKernel, bad_arguments_are_invalid_argument) {
  std::vector<float> x(12, 1.0f), w(4, 1.0f), y(12), rstd(3), dw(4);
  RmsNormForwardArgs f;
  f.N = 3, f.D = 4, f.x = x.data(), f.weight = w.data(), f.y = y.data(), f.rstd = rstd.data();
  EXPECT_NO_THROW(rmsnorm_forward(Device::CPU, f));
  RmsNormForwardArgs bad = f;
  bad.D = 0;
  EXPECT_THROW(rmsnorm_forward(Device::CPU, bad), std::invalid_argument);
  bad = f;
  bad.N = -1;
  EXPECT_THROW(rmsnorm_forward(Device::CPU, bad), std::invalid_argument);
  bad = f;
  bad.y = nullptr;
  EXPECT_THROW(rmsnorm_forward(Device::CPU, bad), std::invalid_argument);
  bad = f;
  bad.eps = -1.0f;
  EXPECT_THROW(rmsnorm_forward(Device::CPU, bad), std::invalid_argument);
  bad = f;
  bad.N = 0, bad.x = nullptr;  // nothing to do
  EXPECT_NO_THROW(rmsnorm_forward(Device::CPU, bad));
  RmsNormBackwardArgs b;
  b.N = 3, b.D = 4, b.dy = x.data(), b.x = x.data(), b.weight = w.data(), b.dx = y.data(), b.dweight = dw.data();
  EXPECT_THROW(rmsnorm_backward(Device::CPU, b), std::invalid_argument);  // no rstd
  b.rstd = rstd.data();
  EXPECT_NO_THROW(rmsnorm_backward(Device::CPU, b));
  b.N = 0, b.dy = nullptr, b.x = nullptr;  // zero rows: dweight is zeroed
  rmsnorm_backward(Device::CPU, b);
  EXPECT_EQ(dw, std::vector<float>(4, 0.0f));
  if (!have_cuda()) {
    EXPECT_THROW(rmsnorm_forward(Device::CUDA, f), std::invalid_argument);
  }
}

// ---------------------------------------------------------------------------------------------- SwiGLU

double silu(double g) { return g / (1.0 + std::exp(-g)); }

TEST(SwiGluKernel, forward_and_backward_match_double_reference) {
  unsigned seed = 100;
  for (DType dt : {DType::F32, DType::BF16})
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1000}, int64_t{4099}}) {
      SCOPED_TRACE(testing::Message() << "n=" << n << " bf16=" << (dt == DType::BF16));
      std::vector<float> gv = randn(n, seed++, 3.0f);
      const float extremes[] = {-100.0f, -30.0f, -10.0f, 0.0f, 10.0f, 30.0f, 100.0f};  // saturated silu
      for (int64_t i = 0; i < std::min<int64_t>(n, 7); ++i) gv[i] = extremes[i];
      Buf gate(dt, gv), up(dt, randn(n, seed++)), dy(dt, randn(n, seed++));
      Buf y(dt, std::vector<float>(n)), dg(dt, std::vector<float>(n)), du(dt, std::vector<float>(n));
      SwiGluForwardArgs f;
      f.n = n, f.dtype = dt, f.gate = gate.data(), f.up = up.data(), f.y = y.data();
      swiglu_forward(Device::CPU, f);
      SwiGluBackwardArgs b;
      b.n = n, b.dtype = dt, b.dy = dy.data(), b.gate = gate.data(), b.up = up.data(), b.d_gate = dg.data(),
      b.d_up = du.data();
      swiglu_backward(Device::CPU, b);
      const std::vector<float> g = gate.values(), u = up.values(), d = dy.values();
      std::vector<double> ry(n), rdg(n), rdu(n);
      for (int64_t i = 0; i < n; ++i) {
        const double s = 1.0 / (1.0 + std::exp(-static_cast<double>(g[i])));
        ry[i] = silu(g[i]) * u[i];
        rdg[i] = static_cast<double>(d[i]) * u[i] * (s + g[i] * s * (1 - s));
        rdu[i] = static_cast<double>(d[i]) * silu(g[i]);
      }
      EXPECT_LE(rel_error(y.values(), ry), tol(dt));
      EXPECT_LE(rel_error(dg.values(), rdg), tol(dt));
      EXPECT_LE(rel_error(du.values(), rdu), tol(dt));
    }
}

TEST(SwiGluKernel, reference_gradients_match_central_differences) {
  const int64_t n = 20;
  const std::vector<double> g = to_double(randn(n, 5, 3.0f)), u = to_double(randn(n, 6)), d = to_double(randn(n, 7));
  std::vector<double> rdg(n), rdu(n);
  for (int64_t i = 0; i < n; ++i) {
    const double s = 1.0 / (1.0 + std::exp(-g[i]));
    rdg[i] = d[i] * u[i] * (s + g[i] * s * (1 - s));
    rdu[i] = d[i] * silu(g[i]);
  }
  auto loss = [&](const std::vector<double>& gg, const std::vector<double>& uu) {
    double l = 0;
    for (int64_t i = 0; i < n; ++i) l += d[i] * silu(gg[i]) * uu[i];
    return l;
  };
  EXPECT_LE(max_rel_diff(rdg, numeric_grad([&](const std::vector<double>& gg) { return loss(gg, u); }, g)), 1e-8);
  EXPECT_LE(max_rel_diff(rdu, numeric_grad([&](const std::vector<double>& uu) { return loss(g, uu); }, u)), 1e-8);
}

TEST(SwiGluKernel, in_place_and_bad_arguments) {
  const int64_t n = 33;
  std::vector<float> g = randn(n, 1), u = randn(n, 2), y(n);
  SwiGluForwardArgs f;
  f.n = n, f.gate = g.data(), f.up = u.data(), f.y = y.data();
  swiglu_forward(Device::CPU, f);
  std::vector<float> gi = g;
  f.gate = gi.data(), f.y = gi.data();
  swiglu_forward(Device::CPU, f);
  EXPECT_EQ(gi, y);
  SwiGluForwardArgs bad = f;
  bad.n = -1;
  EXPECT_THROW(swiglu_forward(Device::CPU, bad), std::invalid_argument);
  bad = f;
  bad.up = nullptr;
  EXPECT_THROW(swiglu_forward(Device::CPU, bad), std::invalid_argument);
  SwiGluBackwardArgs b;
  b.n = n, b.dy = g.data(), b.gate = g.data(), b.up = u.data(), b.d_gate = y.data();
  EXPECT_THROW(swiglu_backward(Device::CPU, b), std::invalid_argument);  // no d_up
  b.n = 0;
  EXPECT_NO_THROW(swiglu_backward(Device::CPU, b));
  if (!have_cuda()) {
    EXPECT_THROW(swiglu_forward(Device::CUDA, f), std::invalid_argument);
  }
}

// ---------------------------------------------------------------------------------------------- RoPE

struct RopeCase {
  int64_t tokens, heads_q, heads_k, head_dim;
  int axes;
  int64_t sec[3];
  float theta;
  int64_t max_pos;
};

std::vector<int64_t> random_positions(const RopeCase& c, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> d(0, c.max_pos);
  std::vector<int64_t> p(c.axes * c.tokens);
  for (auto& v : p) v = d(rng);
  return p;
}

// The definition in double, except for what Hugging Face defines in fp32: inv_freq and the
// product float(pos) * inv_freq (both rounded to fp32). sign -1: rotation by -angle.
std::vector<double> rope_reference(const RopeCase& c, const std::vector<int64_t>& pos, const std::vector<double>& x,
                                   int64_t heads, double sign) {
  const int64_t half = c.head_dim / 2;
  std::vector<double> y(x.size());
  for (int64_t t = 0; t < c.tokens; ++t)
    for (int64_t i = 0; i < half; ++i) {
      int axis = 0;
      if (c.axes == 3) axis = i < c.sec[0] ? 0 : i < c.sec[0] + c.sec[1] ? 1 : 2;
      const float angle = static_cast<float>(pos[axis * c.tokens + t]) * rope_inv_freq(i, c.head_dim, c.theta);
      const double cs = std::cos(static_cast<double>(angle)), sn = sign * std::sin(static_cast<double>(angle));
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t o = (t * heads + h) * c.head_dim;
        y[o + i] = x[o + i] * cs - x[o + i + half] * sn;
        y[o + i + half] = x[o + i + half] * cs + x[o + i] * sn;
      }
    }
  return y;
}

struct RopeRun {
  std::vector<float> q, k;
};

RopeRun run_rope(const RopeCase& c, DType dt, const std::vector<int64_t>& pos, Buf& q, Buf& k, bool backward) {
  Buf qo(dt, std::vector<float>(q.size())), ko(dt, std::vector<float>(k.size()));
  RopeArgs a;
  a.tokens = c.tokens, a.heads_q = c.heads_q, a.heads_k = c.heads_k, a.head_dim = c.head_dim, a.dtype = dt;
  a.positions = pos.data(), a.axes = c.axes, a.theta = c.theta;
  std::copy(c.sec, c.sec + 3, a.mrope_section);
  a.q_in = q.data(), a.q_out = qo.data(), a.k_in = k.data(), a.k_out = ko.data();
  backward ? rope_backward(Device::CPU, a) : rope_forward(Device::CPU, a);
  return {qo.values(), ko.values()};
}

const RopeCase kRopeCases[] = {
    {1, 1, 1, 2, 1, {0, 0, 0}, 10000.0f, 10},
    {7, 3, 2, 16, 1, {0, 0, 0}, 10000.0f, 5000},
    {7, 3, 2, 16, 3, {2, 3, 3}, 1000000.0f, 5000},
    {33, 4, 1, 128, 3, {16, 24, 24}, 1000000.0f, 48000},  // Qwen2.5-VL's sections, long-context positions
    {5, 2, 0, 10, 3, {5, 0, 0}, 10000.0f, 100},             // no k; odd half; an empty section
};

TEST(RopeKernel, forward_and_backward_match_double_reference) {
  unsigned seed = 200;
  for (DType dt : {DType::F32, DType::BF16})
    for (const RopeCase& c : kRopeCases)
      for (bool backward : {false, true}) {
        SCOPED_TRACE(testing::Message() << "tokens=" << c.tokens << " head_dim=" << c.head_dim << " axes=" << c.axes
                                        << " bf16=" << (dt == DType::BF16) << " backward=" << backward);
        const std::vector<int64_t> pos = random_positions(c, seed++);
        Buf q(dt, randn(c.tokens * c.heads_q * c.head_dim, seed++)), k(dt, randn(c.tokens * c.heads_k * c.head_dim, seed++));
        const RopeRun o = run_rope(c, dt, pos, q, k, backward);
        const double sign = backward ? -1.0 : 1.0;
        EXPECT_LE(rel_error(o.q, rope_reference(c, pos, to_double(q.values()), c.heads_q, sign)), tol(dt));
        if (c.heads_k > 0) {
          EXPECT_LE(rel_error(o.k, rope_reference(c, pos, to_double(k.values()), c.heads_k, sign)), tol(dt));
        }
      }
}

TEST(RopeKernel, backward_is_the_transpose_of_forward) {
  // The reference's backward against central differences of L(x) = <dy, forward(x)>, and the kernel's
  // backward against the reference's.
  const RopeCase c{4, 2, 1, 8, 3, {1, 2, 1}, 10000.0f, 300};
  const std::vector<int64_t> pos = random_positions(c, 11);
  const std::vector<double> x = to_double(randn(c.tokens * c.heads_q * c.head_dim, 12)),
                            dy = to_double(randn(x.size(), 13));
  auto loss = [&](const std::vector<double>& xx) { return dot(dy, rope_reference(c, pos, xx, c.heads_q, 1.0)); };
  const std::vector<double> dx = rope_reference(c, pos, dy, c.heads_q, -1.0);
  EXPECT_LE(max_rel_diff(dx, numeric_grad(loss, x)), 1e-8);
  Buf q(DType::F32, std::vector<float>(dy.begin(), dy.end())), k(DType::F32, randn(c.tokens * c.head_dim, 14));
  EXPECT_LE(rel_error(run_rope(c, DType::F32, pos, q, k, true).q, dx), tol(DType::F32));
}

TEST(RopeKernel, in_place_three_equal_axes_equal_one_axis) {
  const RopeCase one{9, 3, 2, 32, 1, {0, 0, 0}, 1000000.0f, 20000};
  RopeCase three = one;
  three.axes = 3, three.sec[0] = 4, three.sec[1] = 6, three.sec[2] = 6;
  const std::vector<int64_t> p1 = random_positions(one, 1);
  std::vector<int64_t> p3;
  for (int a = 0; a < 3; ++a) p3.insert(p3.end(), p1.begin(), p1.end());  // text tokens: one position on every axis
  for (DType dt : {DType::F32, DType::BF16}) {
    Buf q(dt, randn(one.tokens * one.heads_q * one.head_dim, 2)), k(dt, randn(one.tokens * one.heads_k * one.head_dim, 3));
    const RopeRun a = run_rope(one, dt, p1, q, k, false);
    const RopeRun b = run_rope(three, dt, p3, q, k, false);
    EXPECT_EQ(a.q, b.q);
    EXPECT_EQ(a.k, b.k);
    RopeArgs r;  // in place
    r.tokens = one.tokens, r.heads_q = one.heads_q, r.heads_k = one.heads_k, r.head_dim = one.head_dim, r.dtype = dt;
    r.positions = p1.data(), r.theta = one.theta;
    r.q_in = r.q_out = q.data(), r.k_in = r.k_out = k.data();
    rope_forward(Device::CPU, r);
    EXPECT_EQ(q.values(), a.q);
    EXPECT_EQ(k.values(), a.k);
  }
}

TEST(RopeKernel, inv_freq_is_huggingface_fp32_formula_within_one_ulp) {
  // HF: 1.0 / (theta ** (arange(0, d, 2).float() / d)), powf in fp32.
  for (float theta : {10000.0f, 1000000.0f})
    for (int64_t d : {int64_t{64}, int64_t{80}, int64_t{128}})
      for (int64_t i = 0; i < d / 2; ++i) {
        const float hf = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(d));
        const float ours = rope_inv_freq(i, d, theta);
        EXPECT_LE(std::abs(ours - hf), std::nextafter(hf, 1e30f) - hf) << "theta=" << theta << " d=" << d << " i=" << i;
      }
}

TEST(RopeKernel, bad_arguments_are_invalid_argument) {
  std::vector<float> q(2 * 8), k(2 * 8);
  std::vector<int64_t> pos(3 * 2, 1);
  RopeArgs a;
  a.tokens = 2, a.heads_q = 1, a.heads_k = 1, a.head_dim = 8, a.positions = pos.data();
  a.q_in = q.data(), a.q_out = q.data(), a.k_in = k.data(), a.k_out = k.data();
  EXPECT_NO_THROW(rope_forward(Device::CPU, a));
  auto expect_bad = [&](RopeArgs b) {
    EXPECT_THROW(rope_forward(Device::CPU, b), std::invalid_argument);
    EXPECT_THROW(rope_backward(Device::CPU, b), std::invalid_argument);
  };
  RopeArgs b = a;
  b.head_dim = 7;
  expect_bad(b);
  b = a;
  b.axes = 2;
  expect_bad(b);
  b = a;
  b.axes = 3, b.mrope_section[0] = 1, b.mrope_section[1] = 1, b.mrope_section[2] = 1;  // sums to 3, not 4
  expect_bad(b);
  b.mrope_section[2] = 2;
  EXPECT_NO_THROW(rope_forward(Device::CPU, b));
  b = a;
  b.positions = nullptr;
  expect_bad(b);
  b = a;
  b.k_out = nullptr;
  expect_bad(b);
  b.heads_k = 0;  // k not wanted
  EXPECT_NO_THROW(rope_forward(Device::CPU, b));
  b = a;
  b.theta = 0.0f;
  expect_bad(b);
  if (!have_cuda()) {
    EXPECT_THROW(rope_forward(Device::CUDA, a), std::invalid_argument);
  }
}

}  // namespace
