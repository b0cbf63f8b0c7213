// Where a kernels/ call runs for a LibTorch tensor: Device::CUDA and LibTorch's current CUDA stream
// for a CUDA tensor (so a kernel is ordered with the LibTorch ops around it), the CPU twin otherwise.
// Used by the LibTorch-facing callers of kernels/ (the fused log-prob op, the ZeRO step, GAE).
#pragma once
#include <ATen/core/Tensor.h>

#include <stdexcept>
#include <utility>

#include "common/error.h"
#include "kernels/kernel_types.h"

namespace ovr::ops {

struct KernelLaunch {
  kernels::Device device = kernels::Device::CPU;
  void* stream = nullptr;  // cudaStream_t for Device::CUDA
};

// Throws ovr::Error for a CUDA tensor when this build's LibTorch has no CUDA.
KernelLaunch kernel_launch(const at::Tensor& t);

// Runs a kernels/ call, turning its argument errors (std::invalid_argument, e.g. a target outside
// the vocabulary) into ovr::Error, which the programs report as their one-line error.
template <class F>
void run_kernel(F&& f) {
  try {
    std::forward<F>(f)();
  } catch (const std::invalid_argument& e) {
    throw Error(e.what());
  }
}

}  // namespace ovr::ops
