// RMSNorm: argument checks and the device dispatch.
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/rmsnorm.h"

namespace ovr::kernels {

namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("rmsnorm: " + what);
}

void check_sizes(int64_t N, int64_t D) {
  require(N >= 0 && D > 0, "sizes must be N >= 0, D > 0 (got N=" + std::to_string(N) + ", D=" + std::to_string(D) + ")");
  require(D <= INT32_MAX, "D must fit in a 32-bit int");  // the CUDA kernels index within a row with int
}

#ifndef OVR_KERNELS_CUDA
[[noreturn]] void no_cuda() {
  throw std::invalid_argument("rmsnorm: Device::CUDA requested, but ovr_kernels was built without CUDA");
}
#endif

}  // namespace

void check_rmsnorm_args(const RmsNormForwardArgs& a) {
  check_sizes(a.N, a.D);
  require(std::isfinite(a.eps) && a.eps >= 0.0f, "eps must be finite and >= 0");
  if (a.N > 0) require(a.x && a.weight && a.y, "x, weight and y are required");
}

void check_rmsnorm_args(const RmsNormBackwardArgs& a) {
  check_sizes(a.N, a.D);
  if (a.N > 0) require(a.dy && a.x && a.weight && a.rstd && a.dx, "dy, x, weight, rstd and dx are required");
}

void rmsnorm_forward(Device device, const RmsNormForwardArgs& args, void* stream) {
  if (device == Device::CPU) return rmsnorm_forward_cpu(args);
#ifdef OVR_KERNELS_CUDA
  return rmsnorm_forward_cuda(args, stream);
#else
  (void)stream;
  no_cuda();
#endif
}

void rmsnorm_backward(Device device, const RmsNormBackwardArgs& args, void* stream) {
  if (device == Device::CPU) return rmsnorm_backward_cpu(args);
#ifdef OVR_KERNELS_CUDA
  return rmsnorm_backward_cuda(args, stream);
#else
  (void)stream;
  no_cuda();
#endif
}

}  // namespace ovr::kernels
