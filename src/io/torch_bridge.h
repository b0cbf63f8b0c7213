// The bridge between stored tensors and LibTorch: dtype mapping, and reading a stored tensor
// into a CPU at::Tensor / writing one out. The model code loads its weights through here.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

#include "io/dtype.h"
#include "io/hdf5_checkpoint.h"
#include "io/tensor_store.h"

namespace ovr::io {

c10::ScalarType to_scalar_type(DType t);
DType from_scalar_type(c10::ScalarType t);  // throws for types we do not store (complex, ...)

// A new contiguous CPU tensor holding the stored bytes (dtype and shape kept).
at::Tensor read_tensor(ModelSource& src, const std::string& name);
at::Tensor read_tensor(CheckpointReader& reader, const std::string& dataset);
// Writes a CPU tensor (made contiguous) as the whole of `dataset`, from the owning rank.
void write_tensor(CheckpointWriter& writer, const std::string& dataset, const at::Tensor& t);
// The TensorInfo of an at::Tensor, named `name`.
TensorInfo tensor_info(const std::string& name, const at::Tensor& t);

}  // namespace ovr::io
