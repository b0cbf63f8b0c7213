// RMSNorm: the CPU twin (OpenMP over rows; sums in double, so it sits within rounding of the
// exact result that the CUDA kernel's fp32 tree sums approximate).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/bf16.h"
#include "kernels/rmsnorm.h"

namespace ovr::kernels {

namespace {

template <class T>
void forward(const RmsNormForwardArgs& a) {
  const auto* x = static_cast<const T*>(a.x);
  const auto* w = static_cast<const T*>(a.weight);
  auto* y = static_cast<T*>(a.y);
  const int64_t D = a.D;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < a.N; ++n) {
    const T* xr = x + n * D;
    double ss = 0;
    for (int64_t j = 0; j < D; ++j) ss += static_cast<double>(to_f(xr[j])) * to_f(xr[j]);
    const float r = 1.0f / std::sqrt(static_cast<float>(ss / D) + a.eps);
    if (a.rstd) a.rstd[n] = r;
    T* yr = y + n * D;  // may be xr: each element is read before it is written
    for (int64_t j = 0; j < D; ++j) put(yr[j], to_f(w[j]) * (to_f(xr[j]) * r));
  }
}

template <class T>
void backward(const RmsNormBackwardArgs& a) {
  const auto* dy = static_cast<const T*>(a.dy);
  const auto* x = static_cast<const T*>(a.x);
  const auto* w = static_cast<const T*>(a.weight);
  auto* dx = static_cast<T*>(a.dx);
  const int64_t N = a.N, D = a.D;
  // dweight first: the pass over dx may overwrite dy (in place).
  if (a.dweight) {
    // Column blocks, rows in order: the sum's order depends on nothing but N, so the result is the
    // same for any number of threads (no per-thread partials).
    constexpr int64_t kCols = 64;
#pragma omp parallel for schedule(static)
    for (int64_t j0 = 0; j0 < D; j0 += kCols) {
      const int64_t nj = std::min(kCols, D - j0);
      double acc[kCols] = {};
      for (int64_t n = 0; n < N; ++n) {
        const double r = a.rstd[n];
        for (int64_t j = 0; j < nj; ++j) acc[j] += static_cast<double>(to_f(dy[n * D + j0 + j])) * to_f(x[n * D + j0 + j]) * r;
      }
      for (int64_t j = 0; j < nj; ++j)
        a.dweight[j0 + j] = static_cast<float>(a.accumulate ? a.dweight[j0 + j] + acc[j] : acc[j]);
    }
  }
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const T* dyr = dy + n * D;
    const T* xr = x + n * D;
    const float r = a.rstd[n];
    double dot = 0;  // sum_j dy_j w_j x_j
    for (int64_t j = 0; j < D; ++j) dot += static_cast<double>(to_f(dyr[j])) * to_f(w[j]) * to_f(xr[j]);
    const float c = static_cast<float>(dot / D) * r * r;
    T* dxr = dx + n * D;
    for (int64_t j = 0; j < D; ++j) put(dxr[j], r * (to_f(dyr[j]) * to_f(w[j]) - to_f(xr[j]) * c));
  }
}

}  // namespace

void rmsnorm_forward_cpu(const RmsNormForwardArgs& a) {
  check_rmsnorm_args(a);
  if (a.N == 0) return;
  if (a.dtype == DType::BF16) return forward<uint16_t>(a);
  forward<float>(a);
}

void rmsnorm_backward_cpu(const RmsNormBackwardArgs& a) {
  check_rmsnorm_args(a);
  if (a.N == 0) {
    if (a.dweight && !a.accumulate) std::fill(a.dweight, a.dweight + a.D, 0.0f);
    return;
  }
  if (a.dtype == DType::BF16) return backward<uint16_t>(a);
  backward<float>(a);
}

}  // namespace ovr::kernels
