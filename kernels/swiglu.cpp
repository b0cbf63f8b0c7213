// SwiGLU: argument checks and the device dispatch.
#include <stdexcept>
#include <string>

#include "kernels/swiglu.h"

namespace ovr::kernels {

namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("swiglu: " + what);
}

#ifndef OVR_KERNELS_CUDA
[[noreturn]] void no_cuda() {
  throw std::invalid_argument("swiglu: Device::CUDA requested, but ovr_kernels was built without CUDA");
}
#endif

}  // namespace

void check_swiglu_args(const SwiGluForwardArgs& a) {
  require(a.n >= 0, "n must be >= 0 (got " + std::to_string(a.n) + ")");
  if (a.n > 0) require(a.gate && a.up && a.y, "gate, up and y are required");
}

void check_swiglu_args(const SwiGluBackwardArgs& a) {
  require(a.n >= 0, "n must be >= 0 (got " + std::to_string(a.n) + ")");
  if (a.n > 0) require(a.dy && a.gate && a.up && a.d_gate && a.d_up, "dy, gate, up, d_gate and d_up are required");
}

void swiglu_forward(Device device, const SwiGluForwardArgs& args, void* stream) {
  if (device == Device::CPU) return swiglu_forward_cpu(args);
#ifdef OVR_KERNELS_CUDA
  return swiglu_forward_cuda(args, stream);
#else
  (void)stream;
  no_cuda();
#endif
}

void swiglu_backward(Device device, const SwiGluBackwardArgs& args, void* stream) {
  if (device == Device::CPU) return swiglu_backward_cpu(args);
#ifdef OVR_KERNELS_CUDA
  return swiglu_backward_cuda(args, stream);
#else
  (void)stream;
  no_cuda();
#endif
}

}  // namespace ovr::kernels
