// Fused linear log-prob / entropy: argument checks and the device dispatch.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "fused_logprob.h"

namespace ovr::kernels {

namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("fused_logprob: " + what);
}

void check_common(int64_t T, int64_t V, int64_t H, const void* hidden, const void* weight, const int64_t* targets,
                  const LogprobChunks& c) {
  require(T >= 0 && V > 0 && H > 0, "sizes must be T >= 0, V > 0, H > 0 (got T=" + std::to_string(T) +
                                        ", V=" + std::to_string(V) + ", H=" + std::to_string(H) + ")");
  // BLAS and cuBLAS take int sizes and leading dimensions; T and V are tiled, but one tile row spans H
  // and a one-call tile spans V.
  require(V <= INT32_MAX && H <= INT32_MAX, "V and H must fit in a 32-bit int");
  require(c.tokens > 0 && c.vocab > 0, "chunk sizes must be positive (got tokens=" + std::to_string(c.tokens) +
                                           ", vocab=" + std::to_string(c.vocab) + ")");
  if (T == 0) return;
  require(hidden && weight && targets, "hidden, weight and targets are required");
}

}  // namespace

void check_forward_args(const LogprobForwardArgs& a) {
  check_common(a.T, a.V, a.H, a.hidden, a.weight, a.targets, a.chunks);
  if (a.T > 0) require(a.logprob && a.lse, "logprob and lse outputs are required");
}

void check_backward_args(const LogprobBackwardArgs& a) {
  check_common(a.T, a.V, a.H, a.hidden, a.weight, a.targets, a.chunks);
  if (a.T == 0) return;
  require(a.lse != nullptr, "lse from the forward is required");
  require(!a.grad_entropy || a.entropy, "entropy from the forward is required when grad_entropy is given");
}

bool fused_logprob_has_cuda() { return have_cuda(); }

void fused_logprob_forward(Device device, const LogprobForwardArgs& args, void* stream) {
  if (device == Device::CPU) return fused_logprob_forward_cpu(args);
#ifdef OVR_KERNELS_CUDA
  return fused_logprob_forward_cuda(args, stream);
#else
  (void)stream;
  throw std::invalid_argument("fused_logprob: Device::CUDA requested, but ovr_kernels was built without CUDA");
#endif
}

void fused_logprob_backward(Device device, const LogprobBackwardArgs& args, void* stream) {
  if (device == Device::CPU) return fused_logprob_backward_cpu(args);
#ifdef OVR_KERNELS_CUDA
  return fused_logprob_backward_cuda(args, stream);
#else
  (void)stream;
  throw std::invalid_argument("fused_logprob: Device::CUDA requested, but ovr_kernels was built without CUDA");
#endif
}

void fused_logprob_forward_backward(Device device, const LogprobForwardArgs& fwd, const LogprobGrads& grads,
                                    void* stream) {
  if (device == Device::CPU) return fused_logprob_forward_backward_cpu(fwd, grads);
#ifdef OVR_KERNELS_CUDA
  return fused_logprob_forward_backward_cuda(fwd, grads, stream);
#else
  (void)stream;
  throw std::invalid_argument("fused_logprob: Device::CUDA requested, but ovr_kernels was built without CUDA");
#endif
}

}  // namespace ovr::kernels
