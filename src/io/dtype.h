// Element types of stored tensors, named as safetensors names them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ovr::io {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

// "F32", "BF16", ... (the safetensors spelling, also stored in our HDF5 files).
const char* dtype_name(DType t);
// Inverse of dtype_name; throws ovr::Error naming the unknown string.
DType dtype_from_name(const std::string& name);
bool dtype_from_name(const std::string& name, DType* out);  // false if unknown
size_t dtype_size(DType t);
bool dtype_is_float(DType t);

// Name, element type and shape of one tensor (shape {} is a scalar).
struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;

  int64_t numel() const;
  uint64_t nbytes() const { return uint64_t(numel()) * dtype_size(dtype); }
};

std::string shape_string(const std::vector<int64_t>& shape);  // "[3, 4]"

// Conversions between stored floating types and fp32 (round to nearest even on the way down),
// used where values are computed in fp32 (averaging) and stored in the input dtype.
float bf16_to_f32(uint16_t b);
uint16_t f32_to_bf16(float f);
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Convert n elements between type t (F16, BF16, F32 or F64) and fp32.
void to_f32(DType t, const void* src, float* dst, size_t n);
void from_f32(DType t, const float* src, void* dst, size_t n);

}  // namespace ovr::io
