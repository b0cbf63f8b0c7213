// Generalised advantage estimation over packed sequences, as rl::gae (src/rl/ppo.cpp) computes it:
// per sequence, from its last token back,
//   delta_t = r_t + gamma * V_{t+1} - V_t   (V past the sequence's end = 0: terminal)
//   A_t = delta_t + gamma * lambda * A_{t+1},   returns_t = A_t + V_t
// in double, results rounded to fp32. The CPU twin runs rl::gae's loop (bit-identical results);
// CUDA runs one block per sequence with a parallel scan of the affine maps A -> delta + c A, so a
// 48k-token sequence is not one thread's loop. Composing the maps rounds differently from the
// sequential loop: the doubles differ in their last bits, the fp32 results by at most an ulp.
//
// Torch-free (see kernels/README.md). All pointers of a CUDA call are device pointers; `offsets` too.
// Errors: std::invalid_argument for bad arguments (on the CPU also inconsistent offsets; CUDA cannot
// read them without a synchronisation: the adapter checks them on the host, where rl::gae has them),
// std::runtime_error for a failing CUDA call.
#pragma once
#include <cstdint>

#include "kernels/kernel_types.h"

namespace ovr::kernels {

struct GaeArgs {
  int64_t n = 0;                   // tokens, all sequences together
  int64_t sequences = 0;           // S
  const float* rewards = nullptr;  // [n]
  const float* values = nullptr;   // [n]: V(state before token t)
  const int64_t* offsets = nullptr;// [S + 1]: sequence i is [offsets[i], offsets[i+1]); 0 ... n, non-decreasing
  double gamma = 1, lambda = 1;    // in [0, 1]
  float* advantages = nullptr;     // out [n]
  float* returns = nullptr;        // out [n]
};

void gae(Device device, const GaeArgs& args, void* stream = nullptr);

void gae_cpu(const GaeArgs& args);
void gae_cuda(const GaeArgs& args, void* stream);
void check_gae_args(const GaeArgs& args);

}  // namespace ovr::kernels
