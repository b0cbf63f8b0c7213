// Fused AdamW: argument checks, the host-side scalars and the device dispatch.
#include <cmath>
#include <stdexcept>
#include <string>

#include "adamw.h"

namespace ovr::kernels {

namespace {
void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("adamw: " + what);
}
}  // namespace

void check_adamw_args(const AdamWArgs& a) {
  require(a.n >= 0, "n must be >= 0 (got " + std::to_string(a.n) + ")");
  require(a.step >= 1, "step must be >= 1 (got " + std::to_string(a.step) + ")");
  require(a.beta1 >= 0 && a.beta1 < 1 && a.beta2 >= 0 && a.beta2 < 1, "betas must be in [0, 1)");
  require(a.eps > 0 && a.lr >= 0 && a.weight_decay >= 0, "need eps > 0, lr >= 0, weight_decay >= 0");
  require(a.grad_scale > 0 && std::isfinite(a.grad_scale), "grad_scale must be positive and finite");
  if (a.n == 0) return;
  require(a.master && a.exp_avg && a.exp_avg_sq && a.grad, "master, exp_avg, exp_avg_sq and grad are required");
}

AdamWScalars adamw_scalars(const AdamWArgs& a) {
  const double bias1 = 1 - std::pow(a.beta1, double(a.step));
  const double bias2 = 1 - std::pow(a.beta2, double(a.step));
  AdamWScalars s;
  s.decay = float(1 - a.lr * a.weight_decay);
  s.beta1 = float(a.beta1), s.one_minus_beta1 = float(1 - a.beta1);
  s.beta2 = float(a.beta2), s.one_minus_beta2 = float(1 - a.beta2);
  s.inv_sqrt_bias2 = 1.0f / float(std::sqrt(bias2));  // LibTorch CUDA: reciprocal of the fp32 scalar
  s.eps = float(a.eps);
  s.step_size = float(-a.lr / bias1);
  s.grad_scale = float(a.grad_scale);
  return s;
}

void grad_sum_squares(Device device, const float* grad, int64_t n, double* out, void* stream) {
  if (n < 0 || !out || (n > 0 && !grad)) throw std::invalid_argument("adamw: grad_sum_squares needs n >= 0, grad and out");
  if (device == Device::CPU) return grad_sum_squares_cpu(grad, n, out);
#ifdef OVR_KERNELS_CUDA
  return grad_sum_squares_cuda(grad, n, out, stream);
#else
  (void)stream;
  throw std::invalid_argument("adamw: Device::CUDA requested, but ovr_kernels was built without CUDA");
#endif
}

void adamw_step(Device device, const AdamWArgs& args, void* stream) {
  if (device == Device::CPU) return adamw_step_cpu(args);
#ifdef OVR_KERNELS_CUDA
  return adamw_step_cuda(args, stream);
#else
  (void)stream;
  throw std::invalid_argument("adamw: Device::CUDA requested, but ovr_kernels was built without CUDA");
#endif
}

}  // namespace ovr::kernels
