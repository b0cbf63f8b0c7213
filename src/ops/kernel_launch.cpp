#include "ops/kernel_launch.h"

#ifdef OVR_TORCH_CUDA
#include <c10/cuda/CUDAStream.h>
#endif

namespace ovr::ops {

KernelLaunch kernel_launch(const at::Tensor& t) {
  if (!t.is_cuda()) return {};
#ifdef OVR_TORCH_CUDA
  return {kernels::Device::CUDA, c10::cuda::getCurrentCUDAStream(t.get_device()).stream()};
#else
  throw Error("kernels: a CUDA tensor, but this build's LibTorch has no CUDA support");
#endif
}

}  // namespace ovr::ops
