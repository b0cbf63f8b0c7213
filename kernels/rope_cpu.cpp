// (M-)RoPE: the CPU twin (OpenMP over tokens; cos and sin once per token and frequency, shared by
// every head of q and k, in fp32 as the CUDA kernel computes them).
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/bf16.h"
#include "kernels/rope.h"

namespace ovr::kernels {

namespace {

// Rotates the `heads` head vectors of one token (in may be out).
template <class T>
void rotate(const T* in, T* out, int64_t heads, int64_t head_dim, const float* c, const float* s) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < heads; ++h) {
    const T* x = in + h * head_dim;
    T* y = out + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float a = to_f(x[i]), b = to_f(x[i + half]);
      put(y[i], a * c[i] - b * s[i]);
      put(y[i + half], b * c[i] + a * s[i]);
    }
  }
}

template <class T>
void rope(const RopeArgs& a, float sign) {
  const int64_t half = a.head_dim / 2, T_ = a.tokens;
  std::vector<float> inv_freq(half);
  for (int64_t i = 0; i < half; ++i) inv_freq[i] = rope_inv_freq(i, a.head_dim, a.theta);
  const auto* q_in = static_cast<const T*>(a.q_in);
  const auto* k_in = static_cast<const T*>(a.k_in);
  auto* q_out = static_cast<T*>(a.q_out);
  auto* k_out = static_cast<T*>(a.k_out);
#pragma omp parallel
  {
    std::vector<float> c(half), s(half);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < T_; ++t) {
      for (int64_t i = 0; i < half; ++i) {
        const int axis = rope_axis(i, a.axes, a.mrope_section[0], a.mrope_section[1]);
        const float angle = static_cast<float>(a.positions[axis * T_ + t]) * inv_freq[i];
        c[i] = std::cos(angle);
        s[i] = sign * std::sin(angle);
      }
      const int64_t oq = t * a.heads_q * a.head_dim, ok = t * a.heads_k * a.head_dim;
      if (a.heads_q > 0) rotate(q_in + oq, q_out + oq, a.heads_q, a.head_dim, c.data(), s.data());
      if (a.heads_k > 0) rotate(k_in + ok, k_out + ok, a.heads_k, a.head_dim, c.data(), s.data());
    }
  }
}

}  // namespace

void rope_cpu(const RopeArgs& a, float sign) {
  check_rope_args(a);
  if (a.tokens == 0) return;
  if (a.dtype == DType::BF16) return rope<uint16_t>(a, sign);
  rope<float>(a, sign);
}

}  // namespace ovr::kernels
