#include "io/torch_bridge.h"

#include <ATen/ATen.h>

#include "common/error.h"

namespace ovr::io {

c10::ScalarType to_scalar_type(DType t) {
  switch (t) {
    case DType::F64: return at::kDouble;
    case DType::F32: return at::kFloat;
    case DType::F16: return at::kHalf;
    case DType::BF16: return at::kBFloat16;
    case DType::I64: return at::kLong;
    case DType::I32: return at::kInt;
    case DType::I16: return at::kShort;
    case DType::I8: return at::kChar;
    case DType::U8: return at::kByte;
    case DType::BOOL: return at::kBool;
  }
  throw Error("unsupported dtype");
}

DType from_scalar_type(c10::ScalarType t) {
  for (DType d : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32, DType::I16, DType::I8,
                  DType::U8, DType::BOOL})
    if (to_scalar_type(d) == t) return d;
  throw Error(std::string("tensor dtype ") + c10::toString(t) + " cannot be stored");
}

TensorInfo tensor_info(const std::string& name, const at::Tensor& t) {
  return TensorInfo{name, from_scalar_type(t.scalar_type()), t.sizes().vec()};
}

namespace {
at::Tensor empty_for(const TensorInfo& info) {
  return at::empty(info.shape, at::TensorOptions().dtype(to_scalar_type(info.dtype)).device(at::kCPU));
}
}  // namespace

at::Tensor read_tensor(ModelSource& src, const std::string& name) {
  for (const auto& info : src.tensors())
    if (info.name == name) {
      at::Tensor t = empty_for(info);
      src.read_rows(name, 0, dataset_rows(info), t.data_ptr());
      return t;
    }
  throw Error(src.origin() + ": no tensor '" + name + "'");
}

at::Tensor read_tensor(CheckpointReader& reader, const std::string& dataset) {
  at::Tensor t = empty_for(reader.info(dataset));
  reader.read(dataset, t.data_ptr());
  return t;
}

void write_tensor(CheckpointWriter& writer, const std::string& dataset, const at::Tensor& t) {
  if (!t.device().is_cpu()) throw Error(dataset + ": write_tensor needs a CPU tensor");
  at::Tensor c = t.contiguous();
  const TensorInfo info = tensor_info(dataset, c);
  writer.write_rows(dataset, 0, dataset_rows(info), c.data_ptr());
}

}  // namespace ovr::io
