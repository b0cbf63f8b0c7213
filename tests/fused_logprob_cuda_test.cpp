// The fused linear log-prob / entropy kernel: CUDA against the CPU twin (fp32, and bf16 inputs
// against the CPU on the same bf16-rounded values). Skipped where no GPU is visible; built only
// when ovr_kernels has CUDA.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/fused_logprob.h"

using namespace ovr::kernels;

namespace {

#define CUDA_OK(x) ASSERT_EQ((x), cudaSuccess) << #x

bool have_gpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

uint16_t to_bf16(float f) {  // round to nearest even
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
float from_bf16(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

template <class T>
T* to_device(const std::vector<T>& v) {
  T* p = nullptr;
  if (cudaMalloc(&p, sizeof(T) * std::max<size_t>(v.size(), 1)) != cudaSuccess) return nullptr;
  cudaMemcpy(p, v.data(), sizeof(T) * v.size(), cudaMemcpyHostToDevice);
  return p;
}
template <class T>
std::vector<T> to_host(const T* p, size_t n) {
  std::vector<T> v(n);
  cudaMemcpy(v.data(), p, sizeof(T) * n, cudaMemcpyDeviceToHost);
  return v;
}

double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  double err = 0, ref = 1;
  for (size_t i = 0; i < b.size(); ++i) {
    err = std::max(err, static_cast<double>(std::abs(a[i] - b[i])));
    ref = std::max(ref, static_cast<double>(std::abs(b[i])));
  }
  return err / ref;
}

// one_call: the CUDA side runs fused_logprob_forward_backward instead of the two calls.
void compare(int64_t T, int64_t V, int64_t H, LogprobChunks chunks, bool bf16, double tol, bool one_call = false) {
  std::mt19937 rng(T * 131 + V);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> x(T * H), w(V * H), g(T), ge(T);
  std::vector<int64_t> y(T);
  for (auto& v : x) v = n(rng);
  for (auto& v : w) v = n(rng) * 4.0f / std::sqrt(static_cast<float>(H));
  for (auto& v : g) v = n(rng);
  for (auto& v : ge) v = n(rng);
  for (auto& v : y) v = std::uniform_int_distribution<int64_t>(0, V - 1)(rng);
  std::vector<uint16_t> xb(x.size()), wb(w.size());
  if (bf16) {  // the CPU sees exactly the values the GPU sees
    for (size_t i = 0; i < x.size(); ++i) x[i] = from_bf16(xb[i] = to_bf16(x[i]));
    for (size_t i = 0; i < w.size(); ++i) w[i] = from_bf16(wb[i] = to_bf16(w[i]));
  }

  // CPU
  std::vector<float> lp(T), lse(T), ent(T), gh(T * H), gw(V * H);
  LogprobForwardArgs f;
  f.T = T, f.V = V, f.H = H, f.chunks = chunks;
  f.hidden = x.data(), f.weight = w.data(), f.targets = y.data();
  f.logprob = lp.data(), f.lse = lse.data(), f.entropy = ent.data();
  fused_logprob_forward(Device::CPU, f);
  LogprobBackwardArgs b;
  b.T = T, b.V = V, b.H = H, b.chunks = chunks;
  b.hidden = x.data(), b.weight = w.data(), b.targets = y.data();
  b.lse = lse.data(), b.entropy = ent.data(), b.grad_logprob = g.data(), b.grad_entropy = ge.data();
  b.grad_hidden = gh.data(), b.grad_weight = gw.data();
  fused_logprob_backward(Device::CPU, b);

  // CUDA
  void* dx = bf16 ? static_cast<void*>(to_device(xb)) : static_cast<void*>(to_device(x));
  void* dw = bf16 ? static_cast<void*>(to_device(wb)) : static_cast<void*>(to_device(w));
  int64_t* dy = to_device(y);
  float *dg = to_device(g), *dge = to_device(ge);
  float *dlp = to_device(lp), *dlse = to_device(lse), *dent = to_device(ent), *dgh = to_device(gh),
        *dgw = to_device(gw);
  ASSERT_TRUE(dx && dw && dy && dg && dge && dlp && dlse && dent && dgh && dgw);
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreate(&stream));
  f.dtype = b.dtype = bf16 ? DType::BF16 : DType::F32;
  f.hidden = b.hidden = dx, f.weight = b.weight = dw, f.targets = b.targets = dy;
  f.logprob = dlp, f.lse = dlse, f.entropy = dent;
  b.lse = dlse, b.entropy = dent;
  b.grad_logprob = dg, b.grad_entropy = dge, b.grad_hidden = dgh, b.grad_weight = dgw;
  if (one_call) {
    LogprobGrads gr;
    gr.grad_logprob = dg, gr.grad_entropy = dge, gr.grad_hidden = dgh, gr.grad_weight = dgw;
    fused_logprob_forward_backward(Device::CUDA, f, gr, stream);
  } else {
    fused_logprob_forward(Device::CUDA, f, stream);
    fused_logprob_backward(Device::CUDA, b, stream);
  }
  CUDA_OK(cudaStreamSynchronize(stream));
  EXPECT_LE(rel_error(to_host(dlp, T), lp), tol);
  EXPECT_LE(rel_error(to_host(dlse, T), lse), tol);
  EXPECT_LE(rel_error(to_host(dent, T), ent), tol);
  EXPECT_LE(rel_error(to_host(dgh, T * H), gh), bf16 ? 1e-2 : tol);  // d_logits are rounded to bf16
  EXPECT_LE(rel_error(to_host(dgw, V * H), gw), bf16 ? 1e-2 : tol);
  cudaStreamDestroy(stream);
  for (void* p : {dx, dw, static_cast<void*>(dy), static_cast<void*>(dg), static_cast<void*>(dge),
                  static_cast<void*>(dlp), static_cast<void*>(dlse), static_cast<void*>(dent),
                  static_cast<void*>(dgh), static_cast<void*>(dgw)})
    cudaFree(p);
}

}  // namespace

TEST(FusedLogprobCuda, fp32_matches_cpu_twin) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  compare(1, 1, 1, {1, 1}, false, 1e-4);
  compare(37, 1001, 65, {8, 128}, false, 1e-4);
  compare(300, 5003, 128, {128, 1024}, false, 1e-4);
  compare(300, 5003, 128, {1024, 8192}, false, 1e-4);
}

TEST(FusedLogprobCuda, bf16_inputs_match_cpu_twin_on_rounded_values) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  compare(37, 1001, 64, {8, 128}, true, 1e-4);
  compare(300, 5003, 128, {128, 1024}, true, 1e-4);
}

TEST(FusedLogprobCuda, forward_backward_in_one_call_matches_cpu_twin) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  compare(37, 1001, 65, {8, 1001}, false, 1e-4, true);   // no recompute
  compare(37, 1001, 65, {8, 128}, false, 1e-4, true);    // recompute
  compare(300, 5003, 128, {64, 8192}, true, 1e-4, true);  // bf16, no recompute
}
