// Fused linear log-prob / entropy: the CPU twin (BLAS sgemm per tile, OpenMP over the tile's rows).
//
// Threads: the tile loop is sequential; each tile's GEMM is threaded by the BLAS (OpenBLAS-openmp
// follows OMP_NUM_THREADS / torch::set_num_threads) and the element-wise pass over the tile by
// OpenMP over its rows. Threading over token chunks instead would race on grad_weight, which every
// token chunk adds to, or need a private [V, H] copy per thread.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "fused_logprob.h"

namespace ovr::kernels {

namespace {

void check_cpu(DType dtype, int64_t T, int64_t V, const int64_t* targets) {
  if (dtype != DType::F32) throw std::invalid_argument("fused_logprob: the CPU implementation takes fp32 inputs only");
  for (int64_t t = 0; t < T; ++t)
    if (targets[t] < 0 || targets[t] >= V)
      throw std::invalid_argument("fused_logprob: target " + std::to_string(targets[t]) + " at token " +
                                  std::to_string(t) + " is outside the vocabulary [0, " + std::to_string(V) + ")");
}

// tile[nt, nv] = X[nt, H] · W[nv, H]ᵀ
void logits_tile(const float* X, const float* W, int64_t nt, int64_t nv, int64_t H, float* tile) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nt), static_cast<int>(nv), static_cast<int>(H),
              1.0f, X, static_cast<int>(H), W, static_cast<int>(H), 0.0f, tile, static_cast<int>(nv));
}

// The forward's running statistics of one token chunk: per token the running max m,
// s = sum exp(z - m), u = sum exp(z - m) z, and z[target]. Double, because s and u sum up to V terms.
struct RowStats {
  std::vector<double> m, s, u;
  std::vector<float> zt;
  explicit RowStats(int64_t n) : m(n), s(n), u(n), zt(n) {}
  void reset() {
    std::fill(m.begin(), m.end(), -std::numeric_limits<double>::infinity());
    std::fill(s.begin(), s.end(), 0.0);
    std::fill(u.begin(), u.end(), 0.0);
  }
};

// exp(x) for the arguments used here (x = z - max or z - lse, so x <= 0 up to rounding), written so
// that the compiler vectorises it (libm's expf is a call per element, which made the element-wise
// passes ~20% of the forward at H = 3584): Cephes' range reduction x = n ln2 + r and its degree-6
// polynomial for exp(r), then 2^n through the exponent bits. Relative error ~2 ulp; x < -87 gives
// ~1e-38 instead of 0, far below anything it is added to.
inline float exp_nonpos(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  // Round to nearest by adding and subtracting 1.5 * 2^23 (floor() is a call without SSE4.1).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// Folds the logits tile [nt, nv] (vocabulary columns v0..v0+nv) into the running statistics.
void fold_tile(const float* tile, int64_t nt, int64_t nv, int64_t v0, const int64_t* targets, bool want_entropy,
               RowStats& st) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < nt; ++i) {
    const float* z = tile + i * nv;
    float mx = z[0];
#pragma omp simd reduction(max : mx)
    for (int64_t j = 1; j < nv; ++j) mx = z[j] > mx ? z[j] : mx;
    const double m_new = std::max(st.m[i], static_cast<double>(mx));
    const float mf = static_cast<float>(m_new);
    double si = 0, ui = 0;
    if (want_entropy) {
#pragma omp simd reduction(+ : si, ui)
      for (int64_t j = 0; j < nv; ++j) {
        const float e = exp_nonpos(z[j] - mf);
        si += e;
        ui += static_cast<double>(e) * z[j];
      }
    } else {
#pragma omp simd reduction(+ : si)
      for (int64_t j = 0; j < nv; ++j) si += exp_nonpos(z[j] - mf);
    }
    // Rescale what came before to the new max (exp(-inf) = 0 on the first tile).
    const double r = std::exp(st.m[i] - m_new);
    st.s[i] = st.s[i] * r + si;
    st.u[i] = st.u[i] * r + ui;
    st.m[i] = m_new;
    const int64_t y = targets[i];
    if (y >= v0 && y < v0 + nv) st.zt[i] = z[y - v0];
  }
}

void finish_stats(const RowStats& st, int64_t nt, float* lse, float* logprob, float* entropy) {
  for (int64_t i = 0; i < nt; ++i) {
    const double l = st.m[i] + std::log(st.s[i]);
    lse[i] = static_cast<float>(l);
    logprob[i] = static_cast<float>(st.zt[i] - l);
    if (entropy) entropy[i] = static_cast<float>(l - st.u[i] / st.s[i]);
  }
}

// In place over the tile [nt, nv] of tokens t0.. (pointers below are already offset to t0):
// z -> d_logits = g (onehot - p) - ge p (z - sum_j p_j z_j).
void dlogits_tile(float* tile, int64_t nt, int64_t nv, int64_t v0, const int64_t* targets, const float* lse,
                  const float* entropy, const float* grad_logprob, const float* grad_entropy) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < nt; ++i) {
    float* z = tile + i * nv;
    const float l = lse[i];
    const float g = grad_logprob ? grad_logprob[i] : 0.0f;
    const float ge = grad_entropy ? grad_entropy[i] : 0.0f;
    if (ge != 0.0f) {
      const float mean_z = l - entropy[i];  // sum_j p_j z_j
#pragma omp simd
      for (int64_t j = 0; j < nv; ++j) {
        const float p = exp_nonpos(z[j] - l);
        z[j] = -p * (g + ge * (z[j] - mean_z));
      }
    } else {
#pragma omp simd
      for (int64_t j = 0; j < nv; ++j) z[j] = -g * exp_nonpos(z[j] - l);
    }
    const int64_t y = targets[i];
    if (y >= v0 && y < v0 + nv) z[y - v0] += g;
  }
}

// grad_hidden[nt, H] += D[nt, nv] · W[nv, H] and grad_weight[nv, H] += Dᵀ[nv, nt] · X[nt, H]
// (pointers already offset to the tile's tokens and vocabulary rows; either gradient may be null).
void grad_gemms(const float* D, const float* X, const float* W, int64_t nt, int64_t nv, int64_t H, float* gX,
                float* gW) {
  const int ih = static_cast<int>(H), inv = static_cast<int>(nv), int_ = static_cast<int>(nt);
  if (gX) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int_, ih, inv, 1.0f, D, inv, W, ih, 1.0f, gX, ih);
  if (gW) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, inv, ih, int_, 1.0f, D, inv, X, ih, 1.0f, gW, ih);
}

void zero_grads(int64_t T, int64_t V, int64_t H, float* gX, float* gW) {
  if (gX) std::memset(gX, 0, sizeof(float) * static_cast<size_t>(T * H));
  if (gW) std::memset(gW, 0, sizeof(float) * static_cast<size_t>(V * H));
}

// The backward of tokens [t0, t0 + nt) over the whole vocabulary, recomputing each logits tile.
void backward_chunk(const LogprobBackwardArgs& a, int64_t t0, int64_t nt, int64_t cV, float* tile) {
  const int64_t V = a.V, H = a.H;
  const auto* X = static_cast<const float*>(a.hidden) + t0 * H;
  const auto* W = static_cast<const float*>(a.weight);
  for (int64_t v0 = 0; v0 < V; v0 += cV) {
    const int64_t nv = std::min(cV, V - v0);
    logits_tile(X, W + v0 * H, nt, nv, H, tile);
    dlogits_tile(tile, nt, nv, v0, a.targets + t0, a.lse + t0, a.entropy ? a.entropy + t0 : nullptr,
                 a.grad_logprob ? a.grad_logprob + t0 : nullptr, a.grad_entropy ? a.grad_entropy + t0 : nullptr);
    grad_gemms(tile, X, W + v0 * H, nt, nv, H, a.grad_hidden ? a.grad_hidden + t0 * H : nullptr,
               a.grad_weight ? a.grad_weight + v0 * H : nullptr);
  }
}

}  // namespace

void fused_logprob_forward_cpu(const LogprobForwardArgs& a) {
  check_forward_args(a);
  if (a.T == 0) return;
  check_cpu(a.dtype, a.T, a.V, a.targets);
  const int64_t T = a.T, V = a.V, H = a.H;
  const int64_t cT = std::min(a.chunks.tokens, T), cV = std::min(a.chunks.vocab, V);
  const auto* X = static_cast<const float*>(a.hidden);
  const auto* W = static_cast<const float*>(a.weight);
  std::vector<float> tile(static_cast<size_t>(cT * cV));
  RowStats st(cT);
  for (int64_t t0 = 0; t0 < T; t0 += cT) {
    const int64_t nt = std::min(cT, T - t0);
    st.reset();
    for (int64_t v0 = 0; v0 < V; v0 += cV) {
      const int64_t nv = std::min(cV, V - v0);
      logits_tile(X + t0 * H, W + v0 * H, nt, nv, H, tile.data());
      fold_tile(tile.data(), nt, nv, v0, a.targets + t0, a.entropy != nullptr, st);
    }
    finish_stats(st, nt, a.lse + t0, a.logprob + t0, a.entropy ? a.entropy + t0 : nullptr);
  }
}

void fused_logprob_backward_cpu(const LogprobBackwardArgs& a) {
  check_backward_args(a);
  if (!a.accumulate) zero_grads(a.T, a.V, a.H, a.grad_hidden, a.grad_weight);
  if (a.T == 0 || (!a.grad_hidden && !a.grad_weight) || (!a.grad_logprob && !a.grad_entropy)) return;
  check_cpu(a.dtype, a.T, a.V, a.targets);
  const int64_t cT = std::min(a.chunks.tokens, a.T), cV = std::min(a.chunks.vocab, a.V);
  std::vector<float> tile(static_cast<size_t>(cT * cV));
  for (int64_t t0 = 0; t0 < a.T; t0 += cT) backward_chunk(a, t0, std::min(cT, a.T - t0), cV, tile.data());
}

void fused_logprob_forward_backward_cpu(const LogprobForwardArgs& f, const LogprobGrads& g) {
  const LogprobBackwardArgs b = backward_args(f, g);
  check_forward_args(f);
  check_backward_args(b);
  if (!g.accumulate) zero_grads(f.T, f.V, f.H, g.grad_hidden, g.grad_weight);
  if (f.T == 0) return;
  check_cpu(f.dtype, f.T, f.V, f.targets);
  const int64_t T = f.T, V = f.V, H = f.H;
  const int64_t cT = std::min(f.chunks.tokens, T), cV = std::min(f.chunks.vocab, V);
  const auto* X = static_cast<const float*>(f.hidden);
  const auto* W = static_cast<const float*>(f.weight);
  const bool backward = (g.grad_hidden || g.grad_weight) && (g.grad_logprob || g.grad_entropy);
  std::vector<float> tile(static_cast<size_t>(cT * cV));
  RowStats st(cT);
  for (int64_t t0 = 0; t0 < T; t0 += cT) {
    const int64_t nt = std::min(cT, T - t0);
    st.reset();
    for (int64_t v0 = 0; v0 < V; v0 += cV) {
      const int64_t nv = std::min(cV, V - v0);
      logits_tile(X + t0 * H, W + v0 * H, nt, nv, H, tile.data());
      fold_tile(tile.data(), nt, nv, v0, f.targets + t0, f.entropy != nullptr, st);
    }
    finish_stats(st, nt, f.lse + t0, f.logprob + t0, f.entropy ? f.entropy + t0 : nullptr);
    if (!backward) continue;
    if (cV < V) {
      backward_chunk(b, t0, nt, cV, tile.data());
      continue;
    }
    // One tile holds the chunk's logits over the whole vocabulary: no recompute.
    dlogits_tile(tile.data(), nt, V, 0, f.targets + t0, f.lse + t0, f.entropy ? f.entropy + t0 : nullptr,
                 g.grad_logprob ? g.grad_logprob + t0 : nullptr, g.grad_entropy ? g.grad_entropy + t0 : nullptr);
    grad_gemms(tile.data(), X + t0 * H, W, nt, V, H, g.grad_hidden ? g.grad_hidden + t0 * H : nullptr, g.grad_weight);
  }
}

}  // namespace ovr::kernels
