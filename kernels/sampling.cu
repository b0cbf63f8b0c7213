// Sampling: the CUDA implementation, one block of 1024 threads per row.
//
// Per row: the max and the sum of exp (two passes over the logits), then, for a truncated row, a
// radix selection of the kept set's boundary over the probabilities' float bits (three passes of
// 11, 11 and 10 bits: shared-memory histograms of counts and 2^-60 fixed-point masses, and a
// block-wide scan from the top bucket down), then one pass that sums each warp's kept mass over its
// contiguous segment of token ids and a walk of the one warp whose segment holds the draw.
// Probabilities are recomputed from the logits in every pass (an exp is cheaper than a round trip
// of a [rows, V] fp32 buffer through DRAM), so nothing is allocated. Integer masses make every sum
// independent of the order threads add in: no float atomics, and the same token on every run.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "sampling.h"
#define KERNEL_FAMILY "sampling"
#include "cuda_check.h"

namespace ovr::kernels {

namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kBuckets = 2048;
using u64 = unsigned long long;

__device__ __forceinline__ float load(const float* z, int i) { return z[i]; }
__device__ __forceinline__ float load(const __nv_bfloat16* z, int i) { return __bfloat162float(z[i]); }

__device__ __forceinline__ u64 fixed_of(float p) { return __float2ull_rn(p * 0x1p60f); }

// Block-wide reductions and scans in a fixed order (deterministic). `scratch` holds kWarps values.
template <class T, class Op>
__device__ T block_reduce(T v, Op op, T* scratch) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();  // scratch may still be read by the previous call
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  v = scratch[0];
  for (int w = 1; w < kWarps; ++w) v = op(v, scratch[w]);
  return v;
}

__device__ u64 warp_inclusive_scan(u64 v) {
  const int lane = threadIdx.x & 31;
  for (int o = 1; o < 32; o <<= 1) {
    const u64 w = __shfl_up_sync(0xffffffffu, v, o);
    if (lane >= o) v += w;
  }
  return v;
}

__device__ u64 block_inclusive_scan(u64 v, u64* scratch) {
  v = warp_inclusive_scan(v);
  __syncthreads();
  if ((threadIdx.x & 31) == 31) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  u64 before = 0;
  for (int w = 0; w < (threadIdx.x >> 5); ++w) before += scratch[w];
  return before + v;
}

__device__ u64 warp_sum(u64 v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// (p, i) ranks above (q, j): larger probability, or equal and lower id (the first maximum).
__device__ __forceinline__ bool better(float p, int i, float q, int j) { return p > q || (p == q && i < j); }

// Fallback of the untruncated draw (rounding left u past the total): the last token with p > 0.
// Tokens are those kept by `kept(bits, exact ordinal)`; see sampling.h for the semantics.
template <class L>
__global__ void __launch_bounds__(kThreads) sample_kernel(const L* __restrict__ logits, int V,
                                                         const float* __restrict__ temperature,
                                                         const float* __restrict__ top_p_arr,
                                                         const int64_t* __restrict__ top_k_arr,
                                                         const uint8_t* __restrict__ greedy_arr,
                                                         const double* __restrict__ uniforms, int64_t* __restrict__ token,
                                                         float* __restrict__ logprob) {
  __shared__ uint32_t count[kBuckets];
  __shared__ u64 mass[kBuckets];
  __shared__ u64 scratch[kWarps];
  __shared__ float fscratch[kWarps];
  __shared__ double dscratch[kWarps];
  __shared__ int iscratch[kWarps];
  __shared__ u64 warp_mass[kWarps], warp_exact[kWarps];
  __shared__ int warp_last[kWarps];
  __shared__ int boundary, lowest;
  __shared__ u64 sel_count, sel_mass, sel_n;

  const int row = blockIdx.x, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const L* z = logits + int64_t(row) * V;
  const bool greedy = greedy_arr && greedy_arr[row];
  const float T = greedy || !temperature ? 1.0f : temperature[row];
  const float top_p = top_p_arr ? top_p_arr[row] : 1.0f;
  const int64_t top_k = top_k_arr ? top_k_arr[row] : 0;

  // Softmax statistics. x = logit / T and p = exp(x - max) / float(sum) exactly as the CPU twin.
  float mx = -INFINITY;
  for (int i = tid; i < V; i += kThreads) mx = fmaxf(mx, __fdiv_rn(load(z, i), T));
  mx = block_reduce(mx, [](float a, float b) { return fmaxf(a, b); }, fscratch);
  double s = 0;
  for (int i = tid; i < V; i += kThreads) s += double(expf(__fsub_rn(__fdiv_rn(load(z, i), T), mx)));
  const float Sf = float(block_reduce(s, [](double a, double b) { return a + b; }, dscratch));
  auto prob = [&](int i) { return __fdiv_rn(expf(__fsub_rn(__fdiv_rn(load(z, i), T), mx)), Sf); };

  if (greedy) {
    float bp = -1.0f;
    int bi = V;
    for (int i = tid; i < V; i += kThreads) {
      const float p = prob(i);
      if (p > bp) bp = p, bi = i;  // increasing i: this thread's first maximum
    }
    for (int o = 16; o > 0; o >>= 1) {
      const float q = __shfl_xor_sync(0xffffffffu, bp, o);
      const int j = __shfl_xor_sync(0xffffffffu, bi, o);
      if (better(q, j, bp, bi)) bp = q, bi = j;
    }
    if (lane == 0) fscratch[warp] = bp, iscratch[warp] = bi;
    __syncthreads();
    if (tid == 0) {
      for (int w = 1; w < kWarps; ++w)
        if (better(fscratch[w], iscratch[w], bp, bi)) bp = fscratch[w], bi = iscratch[w];
      token[row] = bi;
      logprob[row] = float(log(double(bp)));
    }
    return;
  }

  const double u = uniforms[row];
  const bool truncate = top_p < 1.0f || (top_k > 0 && top_k < V);
  // The kept set: bits > exact, or bits == exact and among the first n_exact_kept such tokens by id.
  uint32_t exact = 0;
  u64 n_exact_kept = 0, kept_mass = 0, target;
  bool count_exact = false;  // whether the exact-probability tokens are cut inside (need ordinals)
  if (truncate) {
    const u64 k = u64(top_k > 0 && top_k < V ? top_k : V);
    const u64 top_fixed = u64(ceil(double(top_p) * 0x1p60));
    u64 kept_before = 0, mass_before = 0, n_exact = 0;
    uint32_t prefix = 0;
    for (int pass = 0; pass < 3; ++pass) {
      const int shift = pass == 0 ? 21 : pass == 1 ? 10 : 0;
      const int width = pass == 2 ? 10 : 11;
      for (int b = tid; b < kBuckets; b += kThreads) count[b] = 0, mass[b] = 0;
      if (tid == 0) boundary = -1, lowest = kBuckets;
      __syncthreads();
      for (int i = tid; i < V; i += kThreads) {
        const float p = prob(i);
        const uint32_t b = __float_as_uint(p);
        if (pass > 0 && (b >> (shift + width)) != prefix) continue;
        const uint32_t key = (b >> shift) & ((1u << width) - 1);
        atomicAdd(&count[key], 1u);
        atomicAdd(&mass[key], fixed_of(p));
      }
      __syncthreads();
      // Scan from the top bucket down: thread t holds buckets hi = 2047 - 2t and hi - 1.
      const int hi = kBuckets - 1 - 2 * tid, lo = hi - 1;
      const u64 c_hi = count[hi], c_lo = count[lo], m_hi = mass[hi], m_lo = mass[lo];
      const u64 c_before = block_inclusive_scan(c_hi + c_lo, scratch) - (c_hi + c_lo);
      const u64 m_before = block_inclusive_scan(m_hi + m_lo, scratch) - (m_hi + m_lo);
      auto reached = [&](u64 c, u64 m) { return kept_before + c >= k || mass_before + m >= top_fixed; };
      if (c_hi > 0 && reached(c_before + c_hi, m_before + m_hi)) atomicMax(&boundary, hi);
      else if (c_lo > 0 && reached(c_before + c_hi + c_lo, m_before + m_hi + m_lo)) atomicMax(&boundary, lo);
      if (c_lo > 0) atomicMin(&lowest, lo);
      else if (c_hi > 0) atomicMin(&lowest, hi);
      __syncthreads();
      const int bb = boundary >= 0 ? boundary : lowest;  // sums short of top_p by rounding: keep all
      if (bb == hi) sel_count = c_before, sel_mass = m_before, sel_n = c_hi;
      if (bb == lo) sel_count = c_before + c_hi, sel_mass = m_before + m_hi, sel_n = c_lo;
      __syncthreads();
      kept_before += sel_count, mass_before += sel_mass, n_exact = sel_n;
      prefix = (prefix << width) | uint32_t(bb);
    }
    exact = prefix;
    const u64 f = fixed_of(__uint_as_float(exact));
    n_exact_kept = min(n_exact, k - kept_before);
    if (f > 0) n_exact_kept = min(n_exact_kept, (top_fixed - mass_before + f - 1) / f);
    kept_mass = mass_before + n_exact_kept * f;
    target = min(u64(u * double(kept_mass)), kept_mass - 1);
    count_exact = n_exact_kept < n_exact;
  } else {
    target = u64(u * 0x1p60);
  }

  // Each warp owns a contiguous segment of ids (a multiple of 32 long), read 32 at a time.
  const int seg = ((V + kWarps - 1) / kWarps + 31) / 32 * 32;
  const int seg_begin = min(V, warp * seg), seg_end = min(V, seg_begin + seg);
  const uint32_t lanes_below = (1u << lane) - 1;
  // Ordinal of the warp's first exact-probability token among all of them (ids below its segment).
  u64 exact_base = 0;
  if (count_exact) {
    u64 n = 0;
    for (int i0 = seg_begin; i0 < seg_end; i0 += 32) {
      const int i = i0 + lane;
      n += __popc(__ballot_sync(0xffffffffu, i < seg_end && __float_as_uint(prob(i)) == exact));
    }
    if (lane == 0) warp_exact[warp] = n;
    __syncthreads();
    for (int w = 0; w < warp; ++w) exact_base += warp_exact[w];
  }
  // Whether token i (in this warp's current group of 32) is kept, and its mass; advances `ordinal`.
  auto kept_mass_of = [&](int i, u64& ordinal, float& p) -> u64 {
    p = i < seg_end ? prob(i) : 0.0f;
    const uint32_t b = __float_as_uint(p);
    bool kept = i < seg_end;
    if (truncate) {
      const bool is_exact = kept && b == exact;
      const uint32_t ballot = __ballot_sync(0xffffffffu, is_exact);
      kept = kept && (b > exact || (is_exact && ordinal + __popc(ballot & lanes_below) < n_exact_kept));
      ordinal += __popc(ballot);
    }
    return kept ? fixed_of(p) : 0;
  };

  u64 ordinal = exact_base, my_mass = 0;
  int last = -1;  // truncated: the last kept token; untruncated: the last with p > 0
  for (int i0 = seg_begin; i0 < seg_end; i0 += 32) {
    float p;
    const u64 m = kept_mass_of(i0 + lane, ordinal, p);
    my_mass += m;
    if (truncate ? m > 0 : p > 0) last = i0 + lane;
  }
  my_mass = warp_sum(my_mass);
  for (int o = 16; o > 0; o >>= 1) last = max(last, __shfl_xor_sync(0xffffffffu, last, o));
  if (lane == 0) warp_mass[warp] = my_mass, warp_last[warp] = last;
  __syncthreads();
  u64 base = 0, total = 0;
  for (int w = 0; w < kWarps; ++w) {
    if (w < warp) base += warp_mass[w];
    total += warp_mass[w];
  }
  if (target >= total) {  // only untruncated, when rounding leaves u past the total
    if (tid == 0) {
      int t = 0;
      for (int w = 0; w < kWarps; ++w) t = max(t, warp_last[w]);
      token[row] = t;
      logprob[row] = float(log(double(prob(t))));
    }
    return;
  }
  if (!(base <= target && target < base + warp_mass[warp])) return;
  // This warp holds the draw: walk its segment with warp-wide inclusive scans.
  ordinal = exact_base;
  for (int i0 = seg_begin; i0 < seg_end; i0 += 32) {
    float p;
    const u64 m = kept_mass_of(i0 + lane, ordinal, p);
    const u64 cum = base + warp_inclusive_scan(m);
    const uint32_t hit = __ballot_sync(0xffffffffu, m > 0 && cum > target);
    if (hit) {
      if (lane == __ffs(hit) - 1) {
        token[row] = i0 + lane;
        const double pd = double(p);
        logprob[row] = float(truncate ? log(pd / (double(kept_mass) * 0x1p-60)) : log(pd));
      }
      return;
    }
    base = __shfl_sync(0xffffffffu, cum, 31);
  }
}

}  // namespace

void sample_tokens_cuda(const SamplingArgs& a, void* stream_ptr) {
  check_sampling_args(a);
  if (a.rows == 0) return;
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  const int V = int(a.V);
  const unsigned grid = unsigned(a.rows);
  if (a.dtype == DType::BF16)
    sample_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const __nv_bfloat16*>(a.logits), V, a.temperature,
                                                 a.top_p, a.top_k, a.greedy, a.uniforms, a.token, a.logprob);
  else
    sample_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const float*>(a.logits), V, a.temperature, a.top_p,
                                                 a.top_k, a.greedy, a.uniforms, a.token, a.logprob);
  OVR_CUDA_LAUNCH_CHECK();
}

}  // namespace ovr::kernels
