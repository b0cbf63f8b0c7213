// RMSNorm, SwiGLU and (M-)RoPE: the CUDA kernels against their CPU twins on the same inputs (fp32,
// and bf16 with both sides reading the same bf16 values). Covers the vectorised and the scalar
// (misaligned) paths, rows too long to keep in registers, in-place calls, and the determinism of
// dweight. Skipped where no GPU is visible; built only when ovr_kernels has CUDA.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/bf16.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"

using namespace ovr::kernels;

namespace {

bool have_gpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

// One host array in the storage type and its device copy. `offset` elements of padding in front
// make the device pointer not 16-byte aligned (the kernels' scalar path).
struct Arr {
  DType dtype;
  size_t n, offset;
  std::vector<uint8_t> host;  // n elements of the storage type
  void* base = nullptr;       // device allocation
  Arr(DType dt, const std::vector<float>& v, size_t off = 0) : dtype(dt), n(v.size()), offset(off) {
    host.resize(n * esize());
    for (size_t i = 0; i < n; ++i) set(i, v[i]);
    cudaMalloc(&base, (n + offset) * esize() + 16);
    cudaMemcpy(dev(), host.data(), host.size(), cudaMemcpyHostToDevice);
  }
  Arr(const Arr&) = delete;
  ~Arr() { cudaFree(base); }
  size_t esize() const { return dtype == DType::BF16 ? 2 : 4; }
  void* dev() const { return static_cast<char*>(base) + offset * esize(); }
  void* cpu() { return host.data(); }
  void set(size_t i, float v) {
    if (dtype == DType::BF16) {
      const uint16_t b = float_to_bf16(v);
      std::memcpy(&host[i * 2], &b, 2);
    } else {
      std::memcpy(&host[i * 4], &v, 4);
    }
  }
  float get(const std::vector<uint8_t>& h, size_t i) const {
    if (dtype == DType::BF16) {
      uint16_t b;
      std::memcpy(&b, &h[i * 2], 2);
      return bf16_to_float(b);
    }
    float f;
    std::memcpy(&f, &h[i * 4], 4);
    return f;
  }
  std::vector<float> cpu_values() const {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = get(host, i);
    return v;
  }
  std::vector<float> dev_values() const {
    std::vector<uint8_t> h(host.size());
    cudaMemcpy(h.data(), dev(), h.size(), cudaMemcpyDeviceToHost);
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = get(h, i);
    return v;
  }
};

std::vector<float> randn(size_t n, unsigned seed, float scale = 1.0f, float mean = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(mean, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

template <class T>
T* dev_copy(const std::vector<T>& v) {
  T* p = nullptr;
  cudaMalloc(&p, sizeof(T) * std::max<size_t>(v.size(), 1));
  cudaMemcpy(p, v.data(), sizeof(T) * v.size(), cudaMemcpyHostToDevice);
  return p;
}
template <class T>
std::vector<T> host_copy(const T* p, size_t n) {
  std::vector<T> v(n);
  cudaMemcpy(v.data(), p, sizeof(T) * n, cudaMemcpyDeviceToHost);
  return v;
}

// max |a - b| / max |b|. The two sides compute the same fp32 values up to ~1e-6; in bf16 an output
// near a rounding boundary can land one bf16 ulp (2^-8 relative) apart.
// `scale`: a floor for max |b|, where b is a difference of larger terms.
double rel_error(const std::vector<float>& a, const std::vector<float>& b, double scale = 1e-30) {
  double err = 0, ref = scale;
  for (size_t i = 0; i < b.size(); ++i) {
    err = std::max(err, static_cast<double>(std::abs(a[i] - b[i])));
    ref = std::max(ref, static_cast<double>(std::abs(b[i])));
  }
  return err / ref;
}
double tol(DType dt) { return dt == DType::BF16 ? 1.0 / 128 : 1e-5; }

// ---------------------------------------------------------------------------------------------- RMSNorm

void compare_rmsnorm(DType dt, int64_t N, int64_t D, size_t offset = 0, bool in_place = false) {
  SCOPED_TRACE(testing::Message() << "N=" << N << " D=" << D << " bf16=" << (dt == DType::BF16) << " offset=" << offset
                                  << " in_place=" << in_place);
  Arr x(dt, randn(N * D, N + D, 2.0f), offset), w(dt, randn(D, D, 0.5f, 1.0f), offset),
      dy(dt, randn(N * D, N * D + 1), offset);
  Arr y(dt, std::vector<float>(N * D), offset), dx(dt, std::vector<float>(N * D), offset);
  // CPU twin
  std::vector<float> rstd(N), dw(D, 0.5f);
  RmsNormForwardArgs f;
  f.N = N, f.D = D, f.dtype = dt, f.x = x.cpu(), f.weight = w.cpu(), f.y = y.cpu(), f.rstd = rstd.data(), f.eps = 1e-6f;
  rmsnorm_forward(Device::CPU, f);
  RmsNormBackwardArgs b;
  b.N = N, b.D = D, b.dtype = dt, b.dy = dy.cpu(), b.x = x.cpu(), b.weight = w.cpu(), b.rstd = rstd.data();
  b.dx = dx.cpu(), b.dweight = dw.data(), b.accumulate = true;
  rmsnorm_backward(Device::CPU, b);
  // CUDA (in place: y over a copy of x, dx over dy)
  float *drstd = dev_copy(std::vector<float>(N)), *ddw = dev_copy(std::vector<float>(D, 0.5f));
  f.x = x.dev(), f.weight = w.dev(), f.y = in_place ? x.dev() : y.dev(), f.rstd = drstd;
  b.dy = dy.dev(), b.x = x.dev(), b.weight = w.dev(), b.rstd = drstd, b.dx = in_place ? dy.dev() : dx.dev(), b.dweight = ddw;
  if (in_place) {  // the backward needs the forward's input: keep x, run the forward on a copy
    Arr xc(dt, x.cpu_values(), offset);
    f.x = f.y = xc.dev();
    rmsnorm_forward(Device::CUDA, f);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_LE(rel_error(xc.dev_values(), y.cpu_values()), tol(dt));
  } else {
    rmsnorm_forward(Device::CUDA, f);
  }
  rmsnorm_backward(Device::CUDA, b);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  if (!in_place) {
    EXPECT_LE(rel_error(y.dev_values(), y.cpu_values()), tol(dt));
  }
  EXPECT_LE(rel_error(host_copy(drstd, N), rstd), 1e-5);
  // dx = rstd (dy w - x rstd² mean(dy w x)) cancels when D is small (to ~0 at D = 1): compare it
  // at the size of its terms.
  double terms = 0;
  const std::vector<float> dyv = dy.cpu_values(), wv = w.cpu_values();
  for (int64_t i = 0; i < N * D; ++i) terms = std::max(terms, std::abs(double(rstd[i / D]) * dyv[i] * wv[i % D]));
  EXPECT_LE(rel_error((in_place ? dy : dx).dev_values(), dx.cpu_values(), terms), tol(dt));
  EXPECT_LE(rel_error(host_copy(ddw, D), dw), 1e-5);
  cudaFree(drstd);
  cudaFree(ddw);
}

TEST(NormActRopeCuda, rmsnorm_matches_cpu_twin) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  for (DType dt : {DType::F32, DType::BF16}) {
    compare_rmsnorm(dt, 1, 1);
    compare_rmsnorm(dt, 37, 64);
    compare_rmsnorm(dt, 300, 3584);      // Qwen2.5-7B's hidden size
    compare_rmsnorm(dt, 100, 3584, 1);   // misaligned: the scalar path
    compare_rmsnorm(dt, 65, 1001);       // D not a multiple of the pack
    compare_rmsnorm(dt, 9, 20000);       // too long for registers: the row is read twice
    compare_rmsnorm(dt, 50, 896, 0, true);
    compare_rmsnorm(dt, 5000, 128);      // more rows than resident blocks: grid-stride and many partials
  }
}

TEST(NormActRopeCuda, rmsnorm_dweight_is_deterministic) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const int64_t N = 4096, D = 3584;
  Arr x(DType::BF16, randn(N * D, 1)), w(DType::BF16, randn(D, 2, 0.5f, 1.0f)), dy(DType::BF16, randn(N * D, 3));
  Arr dx(DType::BF16, std::vector<float>(N * D));
  float* rstd = dev_copy(std::vector<float>(N));
  RmsNormForwardArgs f;
  f.N = N, f.D = D, f.dtype = DType::BF16, f.x = x.dev(), f.weight = w.dev(), f.y = dx.dev(), f.rstd = rstd;
  rmsnorm_forward(Device::CUDA, f);
  std::vector<std::vector<float>> runs;
  for (int r = 0; r < 3; ++r) {
    float* dw = dev_copy(std::vector<float>(D));
    RmsNormBackwardArgs b;
    b.N = N, b.D = D, b.dtype = DType::BF16, b.dy = dy.dev(), b.x = x.dev(), b.weight = w.dev(), b.rstd = rstd;
    b.dx = dx.dev(), b.dweight = dw;
    rmsnorm_backward(Device::CUDA, b);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    runs.push_back(host_copy(dw, D));
    cudaFree(dw);
  }
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_EQ(runs[0], runs[2]);
  cudaFree(rstd);
}

// ---------------------------------------------------------------------------------------------- SwiGLU

void compare_swiglu(DType dt, int64_t n, size_t offset = 0) {
  SCOPED_TRACE(testing::Message() << "n=" << n << " bf16=" << (dt == DType::BF16) << " offset=" << offset);
  std::vector<float> gv = randn(n, n, 3.0f);
  if (n > 2) gv[0] = -100.0f, gv[1] = 100.0f;
  Arr gate(dt, gv, offset), up(dt, randn(n, n + 1), offset), dy(dt, randn(n, n + 2), offset);
  Arr y(dt, std::vector<float>(n), offset), dg(dt, std::vector<float>(n), offset), du(dt, std::vector<float>(n), offset);
  SwiGluForwardArgs f;
  f.n = n, f.dtype = dt, f.gate = gate.cpu(), f.up = up.cpu(), f.y = y.cpu();
  swiglu_forward(Device::CPU, f);
  SwiGluBackwardArgs b;
  b.n = n, b.dtype = dt, b.dy = dy.cpu(), b.gate = gate.cpu(), b.up = up.cpu(), b.d_gate = dg.cpu(), b.d_up = du.cpu();
  swiglu_backward(Device::CPU, b);
  f.gate = gate.dev(), f.up = up.dev(), f.y = y.dev();
  swiglu_forward(Device::CUDA, f);
  b.dy = dy.dev(), b.gate = gate.dev(), b.up = up.dev(), b.d_gate = dg.dev(), b.d_up = du.dev();
  swiglu_backward(Device::CUDA, b);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_LE(rel_error(y.dev_values(), y.cpu_values()), tol(dt));
  EXPECT_LE(rel_error(dg.dev_values(), dg.cpu_values()), tol(dt));
  EXPECT_LE(rel_error(du.dev_values(), du.cpu_values()), tol(dt));
}

TEST(NormActRopeCuda, swiglu_matches_cpu_twin) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  for (DType dt : {DType::F32, DType::BF16}) {
    compare_swiglu(dt, 1);
    compare_swiglu(dt, 13);             // tail only
    compare_swiglu(dt, 1000003);        // packs and a tail
    compare_swiglu(dt, 4096 * 18944);   // one 4096-token MLP of Qwen2.5-7B
    compare_swiglu(dt, 100001, 1);      // misaligned
  }
}

TEST(NormActRopeCuda, swiglu_in_place) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const int64_t n = 10007;
  Arr gate(DType::BF16, randn(n, 1, 3.0f)), up(DType::BF16, randn(n, 2)), y(DType::BF16, std::vector<float>(n));
  SwiGluForwardArgs f;
  f.n = n, f.dtype = DType::BF16, f.gate = gate.dev(), f.up = up.dev(), f.y = y.dev();
  swiglu_forward(Device::CUDA, f);
  f.y = gate.dev();  // over gate
  swiglu_forward(Device::CUDA, f);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(gate.dev_values(), y.dev_values());
}

// ---------------------------------------------------------------------------------------------- RoPE

struct RopeCase {
  int64_t tokens, heads_q, heads_k, head_dim;
  int axes;
  int64_t sec[3];
  float theta;
  int64_t max_pos;
};

void compare_rope(DType dt, const RopeCase& c, bool backward, size_t offset = 0, bool in_place = false) {
  SCOPED_TRACE(testing::Message() << "tokens=" << c.tokens << " head_dim=" << c.head_dim << " axes=" << c.axes
                                  << " bf16=" << (dt == DType::BF16) << " backward=" << backward
                                  << " offset=" << offset << " in_place=" << in_place);
  std::mt19937 rng(c.tokens + c.head_dim);
  std::uniform_int_distribution<int64_t> pd(0, c.max_pos);
  std::vector<int64_t> pos(c.axes * c.tokens);
  for (auto& p : pos) p = pd(rng);
  const size_t nq = c.tokens * c.heads_q * c.head_dim, nk = c.tokens * c.heads_k * c.head_dim;
  Arr q(dt, randn(nq, 1), offset), k(dt, randn(nk, 2), offset);
  Arr qo(dt, std::vector<float>(nq), offset), ko(dt, std::vector<float>(nk), offset);
  RopeArgs a;
  a.tokens = c.tokens, a.heads_q = c.heads_q, a.heads_k = c.heads_k, a.head_dim = c.head_dim, a.dtype = dt;
  a.axes = c.axes, a.theta = c.theta;
  std::copy(c.sec, c.sec + 3, a.mrope_section);
  a.positions = pos.data(), a.q_in = q.cpu(), a.q_out = qo.cpu(), a.k_in = k.cpu(), a.k_out = ko.cpu();
  backward ? rope_backward(Device::CPU, a) : rope_forward(Device::CPU, a);
  int64_t* dpos = dev_copy(pos);
  a.positions = dpos, a.q_in = q.dev(), a.k_in = k.dev();
  a.q_out = in_place ? q.dev() : qo.dev(), a.k_out = in_place ? k.dev() : ko.dev();
  backward ? rope_backward(Device::CUDA, a) : rope_forward(Device::CUDA, a);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_LE(rel_error((in_place ? q : qo).dev_values(), qo.cpu_values()), tol(dt));
  if (c.heads_k > 0) {
    EXPECT_LE(rel_error((in_place ? k : ko).dev_values(), ko.cpu_values()), tol(dt));
  }
  cudaFree(dpos);
}

TEST(NormActRopeCuda, rope_matches_cpu_twin) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const RopeCase qwen{2048, 28, 4, 128, 3, {16, 24, 24}, 1000000.0f, 48000};
  const RopeCase plain{300, 14, 2, 64, 1, {0, 0, 0}, 10000.0f, 4000};
  const RopeCase odd{17, 3, 0, 10, 3, {2, 0, 3}, 10000.0f, 100};  // half = 5: the scalar path, no k
  for (DType dt : {DType::F32, DType::BF16})
    for (bool backward : {false, true}) {
      compare_rope(dt, qwen, backward);
      compare_rope(dt, plain, backward);
      compare_rope(dt, odd, backward);
      compare_rope(dt, plain, backward, 1);        // misaligned
      compare_rope(dt, qwen, backward, 0, true);   // in place
    }
}

}  // namespace
