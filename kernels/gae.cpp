// GAE: argument checks and the device dispatch.
#include <stdexcept>
#include <string>

#include "gae.h"

namespace ovr::kernels {

void check_gae_args(const GaeArgs& a) {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("gae: " + what);
  };
  require(a.n >= 0 && a.sequences >= 0, "sizes must be n >= 0, sequences >= 0 (got n=" + std::to_string(a.n) +
                                            ", sequences=" + std::to_string(a.sequences) + ")");
  require(a.gamma >= 0 && a.gamma <= 1 && a.lambda >= 0 && a.lambda <= 1, "gamma and lambda must be in [0, 1]");
  require(a.offsets != nullptr, "offsets are required");
  if (a.n > 0) require(a.rewards && a.values && a.advantages && a.returns, "rewards, values and outputs are required");
}

void gae(Device device, const GaeArgs& args, void* stream) {
  if (device == Device::CPU) return gae_cpu(args);
#ifdef OVR_KERNELS_CUDA
  return gae_cuda(args, stream);
#else
  (void)stream;
  throw std::invalid_argument("gae: Device::CUDA requested, but ovr_kernels was built without CUDA");
#endif
}

}  // namespace ovr::kernels
