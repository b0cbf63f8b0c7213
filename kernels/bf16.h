// bf16 on the host: the CPU twins store bf16 as uint16_t (the top half of an fp32) and convert
// with round-to-nearest-even, as CUDA's __float2bfloat16 and LibTorch do, so that a twin and its
// CUDA kernel round the same fp32 value to the same bf16.
#pragma once
#include <cstdint>
#include <cstring>

namespace ovr::kernels {

inline float bf16_to_float(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline uint16_t float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  // A NaN whose payload sits in the low half would round to Inf (or carry into the sign): keep it a quiet NaN.
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// Element access for CPU twins templated on the storage type (float, or bf16 bits as uint16_t).
inline float to_f(float v) { return v; }
inline float to_f(uint16_t v) { return bf16_to_float(v); }
inline void put(float& p, float v) { p = v; }
inline void put(uint16_t& p, float v) { p = float_to_bf16(v); }

}  // namespace ovr::kernels
