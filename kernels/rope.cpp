// (M-)RoPE: argument checks and the device dispatch.
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/rope.h"

namespace ovr::kernels {

namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("rope: " + what);
}

void dispatch(Device device, const RopeArgs& args, float sign, void* stream) {
  if (device == Device::CPU) return rope_cpu(args, sign);
#ifdef OVR_KERNELS_CUDA
  return rope_cuda(args, sign, stream);
#else
  (void)stream;
  throw std::invalid_argument("rope: Device::CUDA requested, but ovr_kernels was built without CUDA");
#endif
}

}  // namespace

void check_rope_args(const RopeArgs& a) {
  require(a.tokens >= 0 && a.heads_q >= 0 && a.heads_k >= 0,
          "sizes must be >= 0 (got tokens=" + std::to_string(a.tokens) + ", heads_q=" + std::to_string(a.heads_q) +
              ", heads_k=" + std::to_string(a.heads_k) + ")");
  require(a.head_dim > 0 && a.head_dim % 2 == 0, "head_dim must be even and > 0 (got " + std::to_string(a.head_dim) + ")");
  // The CUDA kernel indexes heads and head_dim with int and keeps inv_freq in shared memory.
  require(a.heads_q <= INT32_MAX && a.heads_k <= INT32_MAX && a.head_dim <= 16384, "heads or head_dim too large");
  require(a.axes == 1 || a.axes == 3, "axes must be 1 (RoPE) or 3 (M-RoPE) (got " + std::to_string(a.axes) + ")");
  if (a.axes == 3) {
    const int64_t* s = a.mrope_section;
    require(s[0] >= 0 && s[1] >= 0 && s[2] >= 0 && s[0] + s[1] + s[2] == a.head_dim / 2,
            "mrope_section {" + std::to_string(s[0]) + ", " + std::to_string(s[1]) + ", " + std::to_string(s[2]) +
                "} must be >= 0 and sum to head_dim / 2 = " + std::to_string(a.head_dim / 2));
  }
  require(std::isfinite(a.theta) && a.theta > 0.0f, "theta must be finite and > 0");
  if (a.tokens == 0) return;
  require(a.positions != nullptr, "positions are required");
  if (a.heads_q > 0) require(a.q_in && a.q_out, "q_in and q_out are required when heads_q > 0");
  if (a.heads_k > 0) require(a.k_in && a.k_out, "k_in and k_out are required when heads_k > 0");
}

void rope_forward(Device device, const RopeArgs& args, void* stream) { dispatch(device, args, 1.0f, stream); }
void rope_backward(Device device, const RopeArgs& args, void* stream) { dispatch(device, args, -1.0f, stream); }

}  // namespace ovr::kernels
