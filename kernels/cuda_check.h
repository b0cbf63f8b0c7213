// Error checks for the .cu files: a failing CUDA call becomes std::runtime_error naming the kernel
// family, the call, file:line and CUDA's own error string. Include only from .cu files.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace ovr::kernels {

inline void cuda_check(cudaError_t e, const char* family, const char* what, const char* file, int line) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string(family) + ": " + what + " failed at " + file + ":" + std::to_string(line) +
                             ": " + cudaGetErrorString(e));
}

}  // namespace ovr::kernels

// KERNEL_FAMILY must be a string literal defined by the .cu before use, e.g. "rmsnorm".
#define OVR_CUDA_CHECK(x) ::ovr::kernels::cuda_check((x), KERNEL_FAMILY, #x, __FILE__, __LINE__)
// After a kernel launch: launch-configuration errors surface here, not at the next sync.
#define OVR_CUDA_LAUNCH_CHECK() OVR_CUDA_CHECK(cudaGetLastError())
