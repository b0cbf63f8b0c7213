// SwiGLU: the CPU twin (OpenMP over elements, the same fp32 formulas as the CUDA kernel).
#include <cmath>
#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/swiglu.h"

namespace ovr::kernels {

namespace {

template <class T>
void forward(const SwiGluForwardArgs& a) {
  const auto* gate = static_cast<const T*>(a.gate);
  const auto* up = static_cast<const T*>(a.up);
  auto* y = static_cast<T*>(a.y);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < a.n; ++i) {
    const float g = to_f(gate[i]);
    put(y[i], g / (1.0f + std::exp(-g)) * to_f(up[i]));
  }
}

template <class T>
void backward(const SwiGluBackwardArgs& a) {
  const auto* dy = static_cast<const T*>(a.dy);
  const auto* gate = static_cast<const T*>(a.gate);
  const auto* up = static_cast<const T*>(a.up);
  auto* dg = static_cast<T*>(a.d_gate);
  auto* du = static_cast<T*>(a.d_up);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < a.n; ++i) {
    const float g = to_f(gate[i]), u = to_f(up[i]), d = to_f(dy[i]);
    const float e1 = 1.0f + std::exp(-g), s = 1.0f / e1;
    // LibTorch's order: silu_backward(dy * up, g) = (dy * up) * s * (1 + g (1 - s)).
    put(dg[i], d * u * s * (1.0f + g * (1.0f - s)));
    put(du[i], d * (g / e1));
  }
}

}  // namespace

void swiglu_forward_cpu(const SwiGluForwardArgs& a) {
  check_swiglu_args(a);
  if (a.dtype == DType::BF16) return forward<uint16_t>(a);
  forward<float>(a);
}

void swiglu_backward_cpu(const SwiGluBackwardArgs& a) {
  check_swiglu_args(a);
  if (a.dtype == DType::BF16) return backward<uint16_t>(a);
  backward<float>(a);
}

}  // namespace ovr::kernels
