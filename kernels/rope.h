// Rotary position embeddings, plain (one position axis) or Qwen2.5-VL's multimodal M-RoPE (three
// axes: temporal, height, width), applied to q and k in one launch, forward and backward.
//
// For token t and frequency i < head_dim / 2 (the pair (j, j + head_dim/2) with j = i):
//   inv_freq[i] = 1 / theta^(2i / head_dim)            fp32, as Hugging Face computes it
//   angle       = float(positions[axis(i)][t]) * inv_freq[i]   fp32 (at 48k the angle's fp32 rounding
//                                                      is part of HF's definition, so we keep it)
//   out[j]        = x[j] cos - x[j + half] sin          (x * cos + rotate_half(x) * sin)
//   out[j + half] = x[j + half] cos + x[j] sin
// axis(i) = 0 with one axis; with three, frequencies [0, s0) read axis 0, [s0, s0 + s1) axis 1, the
// rest axis 2 (mrope_section = {s0, s1, s2}, summing to head_dim / 2), as src/model/rotary.cpp.
// The backward is the rotation by -angle (the transpose).
//
// Numerics against Hugging Face: cos and sin are fp32 (precise sincosf, whose range reduction is
// exact at large angles) and the rotation is fp32, rounded once. HF's bf16 path rounds the cos and
// sin tables to bf16 (relative error up to 2^-9 each) and rounds x*cos, rotate_half(x)*sin and
// their sum to bf16 separately; in fp32 we match HF up to the ulps of sincos and of pow.
// inv_freq: HF computes powf(theta, e) in fp32 (correct to < 1 ulp on the CPU, a few ulp in CUDA's
// powf); we round the double pow(theta, e) to fp32, so the CPU twin and the CUDA kernel get the same
// bits (a 1-ulp difference in inv_freq moves the angle at position 48k by ~0.003 rad).
//
// Torch-free (see kernels/README.md): raw pointers, a stream.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/kernel_types.h"

#ifdef __CUDACC__
#define OVR_HOST_DEVICE __host__ __device__
#else
#define OVR_HOST_DEVICE
#endif

namespace ovr::kernels {

// DType: of q and k (F32, or BF16 stored as uint16_t on the CPU); positions are int64.
// Forward: in = q, k; out = the rotated q, k. Backward: in = d(out), out = d(in). out may be in
// itself (in place); q or k may be left out with heads_q = 0 or heads_k = 0.
struct RopeArgs {
  int64_t tokens = 0;
  int64_t heads_q = 0, heads_k = 0, head_dim = 0;  // head_dim even
  DType dtype = DType::F32;
  const int64_t* positions = nullptr;  // [axes, tokens]
  int axes = 1;                        // 1: plain RoPE; 3: M-RoPE with mrope_section
  int64_t mrope_section[3] = {0, 0, 0};
  float theta = 10000.0f;              // rope_theta (exact in fp32 for the usual 1e4 and 1e6)
  const void* q_in = nullptr;          // [tokens, heads_q, head_dim]
  void* q_out = nullptr;
  const void* k_in = nullptr;          // [tokens, heads_k, head_dim]
  void* k_out = nullptr;
};

// `stream`: a cudaStream_t for Device::CUDA (nullptr: the default stream), ignored on the CPU.
// Errors: std::invalid_argument for bad sizes, sections, missing pointers, Device::CUDA without
// CUDA; std::runtime_error for a failing CUDA call.
void rope_forward(Device device, const RopeArgs& args, void* stream = nullptr);
void rope_backward(Device device, const RopeArgs& args, void* stream = nullptr);

// inv_freq[i] as both implementations compute it (see above).
OVR_HOST_DEVICE inline float rope_inv_freq(int64_t i, int64_t head_dim, float theta) {
  const float e = static_cast<float>(2 * i) / static_cast<float>(head_dim);
  return 1.0f / static_cast<float>(pow(static_cast<double>(theta), static_cast<double>(e)));
}

// The position axis that frequency i reads (sections s0, s1 of mrope_section; axes == 1: always 0).
OVR_HOST_DEVICE inline int rope_axis(int64_t i, int axes, int64_t s0, int64_t s1) {
  if (axes == 1) return 0;
  return i < s0 ? 0 : i < s0 + s1 ? 1 : 2;
}

// sign = +1: forward (rotate by +angle); -1: backward (by -angle).
void rope_cpu(const RopeArgs& args, float sign);
void rope_cuda(const RopeArgs& args, float sign, void* stream);
void check_rope_args(const RopeArgs& args);

}  // namespace ovr::kernels
