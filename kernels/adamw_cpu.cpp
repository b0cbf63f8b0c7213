// Fused AdamW: the CPU twin (one OpenMP-threaded, vectorisable loop).
#include <cmath>
#include <cstring>

#include "kernels/adamw.h"
#include "kernels/bf16.h"

namespace ovr::kernels {

void grad_sum_squares_cpu(const float* g, int64_t n, double* out) {
  double sum = 0;
#pragma omp parallel for simd reduction(+ : sum) schedule(static)
  for (int64_t i = 0; i < n; ++i) sum += double(g[i]) * g[i];
  *out = sum;
}

void adamw_step_cpu(const AdamWArgs& a) {
  check_adamw_args(a);
  const AdamWScalars s = adamw_scalars(a);
  float *p = a.master, *m = a.exp_avg, *v = a.exp_avg_sq;
  const float* grad = a.grad;
  float* out_f32 = a.param_out && a.param_dtype == DType::F32 ? static_cast<float*>(a.param_out) : nullptr;
  uint16_t* out_bf16 = a.param_out && a.param_dtype == DType::BF16 ? static_cast<uint16_t*>(a.param_out) : nullptr;
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < a.n; ++i) {
    const float g = grad[i] * s.grad_scale;
    const float pi = p[i] * s.decay;
    const float mi = m[i] * s.beta1 + s.one_minus_beta1 * g;
    const float vi = v[i] * s.beta2 + (s.one_minus_beta2 * g) * g;
    const float denom = std::sqrt(vi) * s.inv_sqrt_bias2 + s.eps;
    const float pn = pi + s.step_size * (mi / denom);
    p[i] = pn, m[i] = mi, v[i] = vi;
    if (out_f32) out_f32[i] = pn;
    if (out_bf16) out_bf16[i] = float_to_bf16(pn);
  }
}

}  // namespace ovr::kernels
