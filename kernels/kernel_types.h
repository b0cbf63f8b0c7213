// What every kernel's dispatch takes: where to run, and the element type of its tensors.
#pragma once

namespace ovr::kernels {

enum class Device { CPU, CUDA };

// Element type of a kernel's inputs. Accumulation is fp32 (or double where a kernel says so)
// whatever the input. Which kernels accept BF16 on the CPU is said in each kernel's header.
enum class DType { F32, BF16 };

// Whether this build of ovr_kernels has the CUDA implementations.
bool have_cuda();

}  // namespace ovr::kernels
