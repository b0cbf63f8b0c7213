// GAE: the CUDA implementation, one block per sequence walking it in tiles from the end.
//
// A_t = delta_t + c A_{t+1} (c = gamma * lambda) is an affine map of A_{t+1}; maps compose
// associatively, (a1, b1) after (a2, b2) = (a1 + b1 a2, b1 b2), so a tile's 2048 tokens are done by
// a scan instead of a loop: each thread composes the maps of its 8 consecutive tokens, a block-wide
// suffix scan of those gives each thread the A just after its tokens (from the A carried in from
// the tile to the right), and each thread then runs its 8 steps of the plain recurrence. Tiles are
// staged through shared memory so that global loads and stores stay coalesced.
#include <cuda_runtime.h>

#include <cstdint>

#include "gae.h"
#define KERNEL_FAMILY "gae"
#include "cuda_check.h"

namespace ovr::kernels {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kItems = 8;
constexpr int kTile = kThreads * kItems;

struct Affine {  // x -> a + b x
  double a, b;
};
// f after g: x -> f(g(x))
__device__ __forceinline__ Affine compose(Affine f, Affine g) { return {f.a + f.b * g.a, f.b * g.b}; }

__global__ void __launch_bounds__(kThreads) gae_kernel(const float* __restrict__ rewards, const float* __restrict__ values,
                                                      const int64_t* __restrict__ offsets, double gamma, double c,
                                                      float* __restrict__ advantages, float* __restrict__ returns) {
  __shared__ float sr[kTile], sv[kTile + 1];
  __shared__ Affine warp_maps[kWarps];
  __shared__ double carry_out;
  const int64_t begin = offsets[blockIdx.x], end = offsets[blockIdx.x + 1];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  double carry = 0;  // A just after the current tile (terminal: 0)
  for (int64_t tile_end = end; tile_end > begin; tile_end -= kTile) {
    const int64_t tile_begin = tile_end - kTile > begin ? tile_end - kTile : begin;
    const int len = int(tile_end - tile_begin);
    for (int j = tid; j < len; j += kThreads) sr[j] = rewards[tile_begin + j], sv[j] = values[tile_begin + j];
    if (tid == 0) sv[len] = tile_end < end ? values[tile_end] : 0.0f;
    __syncthreads();

    // The recurrence's step at tile index j, as rl::gae rounds it (no FMA contraction).
    auto delta = [&](int j) { return __dsub_rn(__dadd_rn(double(sr[j]), __dmul_rn(gamma, double(sv[j + 1]))), double(sv[j])); };
    const int lo = tid * kItems, hi = min(len, lo + kItems);
    Affine f{0.0, 1.0};
    for (int j = hi - 1; j >= lo; --j) f = compose({delta(j), c}, f);

    // Inclusive suffix scan in the warp: lane holds f_lane o f_lane+1 o ... o f_31.
    Affine incl = f;
    for (int o = 1; o < 32; o <<= 1) {
      const Affine g{__shfl_down_sync(0xffffffffu, incl.a, o), __shfl_down_sync(0xffffffffu, incl.b, o)};
      if (lane + o < 32) incl = compose(incl, g);
    }
    Affine excl{__shfl_down_sync(0xffffffffu, incl.a, 1), __shfl_down_sync(0xffffffffu, incl.b, 1)};
    if (lane == 31) excl = {0.0, 1.0};
    if (lane == 0) warp_maps[warp] = incl;
    __syncthreads();
    Affine above{0.0, 1.0};  // the warps to the right of this one, composed
    for (int w = kWarps - 1; w > warp; --w) above = compose(warp_maps[w], above);
    const Affine to_end = compose(excl, above);
    double A = to_end.a + to_end.b * carry;  // A just after this thread's tokens

    float adv[kItems], ret[kItems];
#pragma unroll
    for (int k = kItems - 1; k >= 0; --k) {
      const int j = lo + k;
      if (j >= hi) continue;
      A = __dadd_rn(delta(j), __dmul_rn(c, A));
      adv[k] = float(A);
      ret[k] = float(__dadd_rn(A, double(sv[j])));
    }
    if (tid == 0) carry_out = A;
    __syncthreads();  // every delta() has read sr / sv: the outputs may replace them
#pragma unroll
    for (int k = 0; k < kItems; ++k)
      if (lo + k < hi) sr[lo + k] = adv[k], sv[lo + k] = ret[k];
    __syncthreads();
    for (int j = tid; j < len; j += kThreads) advantages[tile_begin + j] = sr[j], returns[tile_begin + j] = sv[j];
    carry = carry_out;
    __syncthreads();  // before the next tile overwrites sr / sv / warp_maps / carry_out
  }
}

}  // namespace

void gae_cuda(const GaeArgs& a, void* stream_ptr) {
  check_gae_args(a);
  if (a.sequences == 0 || a.n == 0) return;
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  gae_kernel<<<unsigned(a.sequences), kThreads, 0, stream>>>(a.rewards, a.values, a.offsets, a.gamma,
                                                              a.gamma * a.lambda, a.advantages, a.returns);
  OVR_CUDA_LAUNCH_CHECK();
}

}  // namespace ovr::kernels
