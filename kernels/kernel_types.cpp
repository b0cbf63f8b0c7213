#include "kernels/kernel_types.h"

namespace ovr::kernels {

bool have_cuda() {
#ifdef OVR_KERNELS_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace ovr::kernels
