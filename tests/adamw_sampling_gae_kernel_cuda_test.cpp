// The AdamW, sampling and GAE kernels: CUDA against the CPU twins (and, for sampling, the
// sort-based reference of tests/sampling_reference.h). Skipped where no GPU is visible; built only
// when ovr_kernels has CUDA.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/adamw.h"
#include "kernels/gae.h"
#include "kernels/sampling.h"
#include "tests/sampling_reference.h"

using namespace ovr::kernels;
using ovr::test::bf16_bits;
using ovr::test::bf16_value;

namespace {

bool have_gpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

// A device copy of a host vector, freed with the object.
template <class T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(const std::vector<T>& v) : n(v.size()) {
    if (cudaMalloc(&p, sizeof(T) * std::max<size_t>(n, 1)) != cudaSuccess) throw std::runtime_error("cudaMalloc");
    cudaMemcpy(p, v.data(), sizeof(T) * n, cudaMemcpyHostToDevice);
  }
  ~Dev() { cudaFree(p); }
  std::vector<T> host() const {
    std::vector<T> v(n);
    cudaMemcpy(v.data(), p, sizeof(T) * n, cudaMemcpyDeviceToHost);
    return v;
  }
};

}  // namespace

TEST(AdamWKernelCuda, matches_cpu_twin_within_an_ulp_and_bf16_param_out) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  for (int64_t n : {1, 3, 4, 1000, 1003, 1 << 20}) {
    for (int offset : {0, 1}) {  // offset 1: pointers not 16-byte aligned (scalar path)
      SCOPED_TRACE(testing::Message() << "n=" << n << " offset=" << offset);
      std::mt19937 rng(unsigned(n + offset));
      std::normal_distribution<float> nd(0, 1);
      std::vector<float> p(n + offset), m(n + offset), v(n + offset), g(n + offset);
      for (int64_t i = 0; i < n + offset; ++i) p[i] = nd(rng), m[i] = 0.1f * nd(rng), v[i] = 0.01f * std::abs(nd(rng)), g[i] = nd(rng);
      Dev<float> dp(p), dm(m), dv(v), dg(g);
      Dev<uint16_t> dout(std::vector<uint16_t>(n + offset));
      std::vector<uint16_t> out(n + offset);
      AdamWArgs a;
      a.n = n, a.lr = 1e-3, a.beta1 = 0.9, a.beta2 = 0.95, a.weight_decay = 0.1, a.step = 7, a.grad_scale = 0.6;
      a.param_dtype = DType::BF16;
      AdamWArgs c = a;
      c.master = p.data() + offset, c.exp_avg = m.data() + offset, c.exp_avg_sq = v.data() + offset;
      c.grad = g.data() + offset, c.param_out = out.data() + offset;
      adamw_step(Device::CPU, c);
      a.master = dp.p + offset, a.exp_avg = dm.p + offset, a.exp_avg_sq = dv.p + offset, a.grad = dg.p + offset;
      a.param_out = dout.p + offset;
      adamw_step(Device::CUDA, a);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      const auto hp = dp.host(), hm = dm.host(), hv = dv.host();
      const auto hout = dout.host();
      for (int64_t i = offset; i < n + offset; ++i) {
        ASSERT_NEAR(hp[i], p[i], 2e-7 * std::max(1.0f, std::abs(p[i]))) << i;
        // An ulp of the two terms summed (FMA on CUDA, two roundings on the CPU), not of the result:
        // m and v may come out much smaller than the terms.
        ASSERT_NEAR(hm[i], m[i], 2.4e-7 * (std::abs(m[i]) + 0.1f * std::abs(g[i])) + 1e-12f) << i;
        ASSERT_NEAR(hv[i], v[i], 2.4e-7 * (std::abs(v[i]) + 0.05f * g[i] * g[i]) + 1e-12f) << i;
        ASSERT_EQ(hout[i], bf16_bits(hp[i])) << i;  // bf16 of CUDA's own master
      }
      double sq_cpu = 0, sq_gpu = 0, sq_gpu2 = 0;
      grad_sum_squares(Device::CPU, g.data() + offset, n, &sq_cpu);
      Dev<double> dsq(std::vector<double>(1));
      grad_sum_squares(Device::CUDA, dg.p + offset, n, dsq.p);
      sq_gpu = dsq.host()[0];
      grad_sum_squares(Device::CUDA, dg.p + offset, n, dsq.p);
      sq_gpu2 = dsq.host()[0];
      EXPECT_NEAR(sq_gpu, sq_cpu, 1e-12 * sq_cpu);
      EXPECT_EQ(sq_gpu, sq_gpu2);  // deterministic
    }
  }
}

TEST(SamplingKernelCuda, matches_cpu_twin_and_reference_on_random_rows) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  int64_t compared = 0, skipped = 0;
  unsigned seed = 1;
  for (int64_t V : {1, 2, 7, 50, 1000, 5003, 40000}) {
    for (bool bf16 : {false, true}) {
      SCOPED_TRACE(testing::Message() << "V=" << V << " bf16=" << bf16);
      std::mt19937_64 rng(seed++);
      std::normal_distribution<double> nd(0, 1);
      std::uniform_real_distribution<double> ud(0, 1);
      const int64_t rows = V >= 5000 ? 64 : 300;
      std::vector<float> logits, T, top_p;
      std::vector<uint16_t> logits_bf16;
      std::vector<int64_t> top_k;
      std::vector<uint8_t> greedy;
      std::vector<double> u;
      for (int64_t r = 0; r < rows; ++r) {
        const int shape = int(rng() % 4);
        const double scale = shape == 0 ? 0.5 : shape == 1 ? 3.0 : 1.0;
        for (int64_t i = 0; i < V; ++i) {
          double l = shape == 3 ? double(rng() % 4) : std::round(nd(rng) * scale * 64) / 64;
          if (shape == 2 && i % 97 == 5) l += 8;
          const float f = bf16 ? bf16_value(bf16_bits(float(l))) : float(l);
          logits.push_back(f), logits_bf16.push_back(bf16_bits(f));
        }
        const float Ts[] = {0.5f, 0.7f, 1.0f, 1.3f};
        T.push_back(Ts[rng() % 4]);
        const int mode = int(rng() % 5);
        const float ps[] = {0.3f, 0.5f, 0.9f, 0.95f, float(0.05 + 0.9 * ud(rng))};
        top_p.push_back(mode == 1 || mode == 3 ? ps[rng() % 5] : 1.0f);
        const int64_t ks[] = {1, 2, 5, 50, V, int64_t(1 + rng() % uint64_t(V))};
        top_k.push_back(mode == 2 || mode == 3 ? ks[rng() % 6] : 0);
        greedy.push_back(mode == 4);
        u.push_back(ud(rng));
      }
      std::vector<int64_t> tok_cpu(rows), tok_gpu(rows);
      std::vector<float> lp_cpu(rows);
      SamplingArgs a;
      a.rows = rows, a.V = V, a.dtype = bf16 ? DType::BF16 : DType::F32;
      a.logits = bf16 ? static_cast<const void*>(logits_bf16.data()) : logits.data();
      a.temperature = T.data(), a.top_p = top_p.data(), a.top_k = top_k.data(), a.greedy = greedy.data();
      a.uniforms = u.data(), a.token = tok_cpu.data(), a.logprob = lp_cpu.data();
      sample_tokens(Device::CPU, a);
      Dev<float> dl(logits), dT(T), dp(top_p), dlp{std::vector<float>(rows)};
      Dev<uint16_t> dlb(logits_bf16);
      Dev<int64_t> dk(top_k), dtok{std::vector<int64_t>(rows)};
      Dev<uint8_t> dg(greedy);
      Dev<double> du(u);
      a.logits = bf16 ? static_cast<const void*>(dlb.p) : dl.p;
      a.temperature = dT.p, a.top_p = dp.p, a.top_k = dk.p, a.greedy = dg.p, a.uniforms = du.p;
      a.token = dtok.p, a.logprob = dlp.p;
      sample_tokens(Device::CUDA, a);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      const auto gt = dtok.host();
      const auto gl = dlp.host();
      sample_tokens(Device::CUDA, a);  // the same again: deterministic
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      EXPECT_EQ(dtok.host(), gt);
      for (int64_t r = 0; r < rows; ++r) {
        const std::vector<float> row(logits.begin() + r * V, logits.begin() + (r + 1) * V);
        const auto ref = ovr::test::reference_sample(row, T[r], top_p[r], top_k[r], greedy[r], u[r]);
        if (!ref.safe) {
          ++skipped;
          continue;
        }
        ++compared;
        ASSERT_EQ(gt[r], tok_cpu[r]) << "row " << r << " T=" << T[r] << " top_p=" << top_p[r] << " top_k=" << top_k[r]
                                     << " greedy=" << int(greedy[r]) << " u=" << u[r];
        ASSERT_EQ(gt[r], ref.token) << "row " << r;
        ASSERT_NEAR(gl[r], lp_cpu[r], 1e-5 * std::max(1.0f, std::abs(lp_cpu[r]))) << "row " << r;
      }
    }
  }
  EXPECT_GT(compared, 20 * skipped) << compared << " compared, " << skipped << " skipped";
}

TEST(GaeKernelCuda, matches_cpu_twin_on_mixed_lengths) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0, 1);
  std::vector<int64_t> lengths = {0, 1, 2, 31, 32, 33, 2047, 2048, 2049, 4096, 0, 48000, 7, 0};
  for (int i = 0; i < 100; ++i) lengths.push_back(rng() % 3000);
  std::vector<int64_t> off = {0};
  for (int64_t L : lengths) off.push_back(off.back() + L);
  const int64_t n = off.back();
  std::vector<float> r(n), v(n);
  for (auto& x : r) x = nd(rng);
  for (auto& x : v) x = nd(rng);
  for (auto [gamma, lambda] : {std::pair{1.0, 1.0}, std::pair{0.99, 0.95}, std::pair{0.0, 0.5}, std::pair{1.0, 0.0}}) {
    SCOPED_TRACE(testing::Message() << "gamma=" << gamma << " lambda=" << lambda);
    std::vector<float> adv(n), ret(n);
    GaeArgs a;
    a.n = n, a.sequences = int64_t(lengths.size()), a.rewards = r.data(), a.values = v.data(), a.offsets = off.data();
    a.gamma = gamma, a.lambda = lambda, a.advantages = adv.data(), a.returns = ret.data();
    gae(Device::CPU, a);
    Dev<float> dr(r), dv(v), dadv{std::vector<float>(n)}, dret{std::vector<float>(n)};
    Dev<int64_t> doff(off);
    a.rewards = dr.p, a.values = dv.p, a.offsets = doff.p, a.advantages = dadv.p, a.returns = dret.p;
    gae(Device::CUDA, a);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const auto ga = dadv.host(), gr = dret.host();
    // The scan rounds differently from the loop: a few ulps of the sum's scale (with gamma = lambda = 1
    // A is a sum of up to 48k terms of size ~1, so the scale is the running |sum| of terms).
    for (int64_t t = 0; t < n; ++t) {
      ASSERT_NEAR(ga[t], adv[t], 1e-6 * std::max(1.0f, std::abs(adv[t]))) << t;
      ASSERT_NEAR(gr[t], ret[t], 1e-6 * std::max(1.0f, std::abs(ret[t]))) << t;
    }
  }
}
