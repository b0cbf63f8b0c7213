// Sampling: argument checks and the device dispatch.
#include <stdexcept>
#include <string>

#include "sampling.h"

namespace ovr::kernels {

void check_sampling_args(const SamplingArgs& a) {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("sampling: " + what);
  };
  require(a.rows >= 0 && a.V > 0, "sizes must be rows >= 0, V > 0 (got rows=" + std::to_string(a.rows) +
                                      ", V=" + std::to_string(a.V) + ")");
  // One CUDA block per row counts a row's tokens in 32-bit integers.
  require(a.V <= INT32_MAX, "V must fit in a 32-bit int");
  if (a.rows == 0) return;
  require(a.logits && a.uniforms && a.token && a.logprob, "logits, uniforms, token and logprob are required");
}

void sample_tokens(Device device, const SamplingArgs& args, void* stream) {
  if (device == Device::CPU) return sample_tokens_cpu(args);
#ifdef OVR_KERNELS_CUDA
  return sample_tokens_cuda(args, stream);
#else
  (void)stream;
  throw std::invalid_argument("sampling: Device::CUDA requested, but ovr_kernels was built without CUDA");
#endif
}

}  // namespace ovr::kernels
