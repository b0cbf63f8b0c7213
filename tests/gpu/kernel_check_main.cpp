// The GPU kernel check: measures the device's copy bandwidth and GEMM FLOP/s, runs every kernel
// family's check (CUDA against its CPU twin and against the plain LibTorch way on the GPU), and
// prints one table. Exit status 1 when any kernel's error exceeds its bound.
//   gpu_kernel_check [family ...]   (families: logprob norm adamw sampling gae; default all)
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <set>
#include <string>
#include <vector>

#include "tests/gpu/kernel_check.h"

namespace ovr::gpucheck {

namespace {

std::vector<Row> g_rows;
double g_bandwidth = 0, g_flops_f32 = 0, g_flops_bf16 = 0;  // measured peaks (bytes/s, FLOP/s)

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

// Peak bandwidth: a 2 GiB device-to-device copy, counting the bytes read and written.
double measure_bandwidth() {
  const size_t n = size_t(2) << 30;
  at::Tensor a = at::empty({int64_t(n)}, at::TensorOptions().dtype(at::kByte).device(at::kCUDA));
  at::Tensor b = at::empty_like(a);
  const double ms = time_ms([&] { b.copy_(a); }, 3, 10);
  return 2.0 * double(n) / (ms * 1e-3);
}

// Peak FLOP/s: an 8192³ GEMM in the dtype, through cuBLAS (fp32 without TF32, as our kernels use).
double measure_gemm(at::ScalarType dt) {
  const int64_t n = 8192;
  auto opt = at::TensorOptions().dtype(dt).device(at::kCUDA);
  at::Tensor a = at::randn({n, n}, opt), b = at::randn({n, n}, opt);
  const double ms = time_ms([&] { at::mm(a, b); }, 3, 10);
  return 2.0 * double(n) * n * n / (ms * 1e-3);
}

std::string fmt(double v, const char* f) {
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

bool passes(const Row& r) {
  if (std::isnan(r.tol)) return true;
  return !(r.err_cpu > r.tol) && !(r.err_torch > r.tol);  // NaN errors fail
}

}  // namespace

void report(const Row& row) {
  g_rows.push_back(row);
  std::printf("  done: %s (%s)\n", row.kernel.c_str(), passes(row) ? "ok" : "FAIL");
  std::fflush(stdout);
}

double time_ms(const std::function<void()>& f, int warmup, int iters) {
  for (int i = 0; i < warmup; ++i) f();
  cudaStream_t s = c10::cuda::getCurrentCUDAStream().stream();
  cudaEvent_t start, stop;
  check_cuda(cudaEventCreate(&start), "cudaEventCreate");
  check_cuda(cudaEventCreate(&stop), "cudaEventCreate");
  check_cuda(cudaEventRecord(start, s), "cudaEventRecord");
  for (int i = 0; i < iters; ++i) f();
  check_cuda(cudaEventRecord(stop, s), "cudaEventRecord");
  check_cuda(cudaEventSynchronize(stop), "cudaEventSynchronize");
  float ms = 0;
  check_cuda(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return double(ms) / iters;
}

double peak_extra_mib(const std::function<void()>& f) {
  namespace alloc = c10::cuda::CUDACachingAllocator;
  int dev = 0;
  check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
  check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  // Our kernels take their workspace from the stream-ordered pool, LibTorch from its caching
  // allocator: the peak is the sum of both high-water marks above what was held before.
  cudaMemPool_t pool;
  check_cuda(cudaDeviceGetDefaultMemPool(&pool, dev), "cudaDeviceGetDefaultMemPool");
  cuuint64_t zero = 0;
  check_cuda(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &zero), "reset pool high");
  alloc::resetPeakStats(dev);
  const auto before = alloc::getDeviceStats(dev);
  // [0]: the AGGREGATE pool (StatType has moved between namespaces across LibTorch versions).
  const int64_t base = before.allocated_bytes[0].current;
  f();
  check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  const auto after = alloc::getDeviceStats(dev);
  cuuint64_t pool_high = 0;
  check_cuda(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &pool_high), "pool high");
  const int64_t torch_peak = after.allocated_bytes[0].peak - base;
  return double(torch_peak + int64_t(pool_high)) / (1 << 20);
}

void empty_cache() { c10::cuda::CUDACachingAllocator::emptyCache(); }

void* stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor x = a.to(at::kCUDA, at::kDouble), y = b.to(at::kCUDA, at::kDouble);
  return (x - y).abs().max().item<double>();
}

}  // namespace ovr::gpucheck

int main(int argc, char** argv) {
  using namespace ovr::gpucheck;
  int gpus = 0;
  if (cudaGetDeviceCount(&gpus) != cudaSuccess || gpus == 0) {
    std::printf("gpu_kernel_check: no CUDA device visible\n");
    return 2;
  }
  std::set<std::string> want(argv + 1, argv + argc);
  auto on = [&](const char* f) { return want.empty() || want.count(f); };
  // The kernels use plain fp32 GEMMs; the plain way must not get TF32 either, or it would be
  // measured at another precision.
  at::globalContext().setAllowTF32CuBLAS(false);
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  g_bandwidth = measure_bandwidth();
  g_flops_f32 = measure_gemm(at::kFloat);
  g_flops_bf16 = measure_gemm(at::kBFloat16);
  std::printf("device %s: copy %.0f GB/s (read + write), GEMM fp32 %.1f TFLOP/s, bf16 %.1f TFLOP/s\n", prop.name,
              g_bandwidth / 1e9, g_flops_f32 / 1e12, g_flops_bf16 / 1e12);
  std::fflush(stdout);

  struct Family {
    const char* name;
    void (*run)();
  };
  const Family families[] = {{"logprob", check_fused_logprob}, {"norm", check_norm_act_rope}, {"adamw", check_adamw},
                             {"sampling", check_sampling},     {"gae", check_gae}};
  bool failed = false;
  for (const Family& f : families) {
    if (!on(f.name)) continue;
    try {
      f.run();
    } catch (const std::exception& e) {
      std::printf("FAILED: %s check threw: %s\n", f.name, e.what());
      failed = true;
    }
    c10::cuda::CUDACachingAllocator::emptyCache();
  }

  std::printf("\n| kernel | max err vs CPU twin | max err vs LibTorch | tol | ms | LibTorch ms | speed-up | GB/s or TFLOP/s | "
              "%% of peak | peak MiB | LibTorch peak MiB | ok | note |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Row& r : g_rows) {
    std::string rate = "-", share = "-";
    if (r.bytes > 0 && !std::isnan(r.ms)) {
      const double bw = r.bytes / (r.ms * 1e-3);
      rate = fmt(bw / 1e9, "%.0f GB/s"), share = fmt(100 * bw / g_bandwidth, "%.0f%%");
    } else if (r.flops > 0 && !std::isnan(r.ms)) {
      const double fl = r.flops / (r.ms * 1e-3), peak = r.bf16_flops ? g_flops_bf16 : g_flops_f32;
      rate = fmt(fl / 1e12, "%.1f TFLOP/s"), share = fmt(100 * fl / peak, "%.0f%%");
    }
    const bool ok = passes(r);
    failed |= !ok;
    std::printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.kernel.c_str(),
                fmt(r.err_cpu, "%.2e").c_str(), fmt(r.err_torch, "%.2e").c_str(), fmt(r.tol, "%.0e").c_str(),
                fmt(r.ms, "%.3f").c_str(), fmt(r.torch_ms, "%.3f").c_str(),
                fmt(r.torch_ms / r.ms, "%.2fx").c_str(), rate.c_str(), share.c_str(), fmt(r.peak_mib, "%.0f").c_str(),
                fmt(r.torch_peak_mib, "%.0f").c_str(), ok ? "yes" : "**NO**", r.note.c_str());
  }
  std::printf("\n%s\n", failed ? "gpu_kernel_check: FAILED" : "gpu_kernel_check: all kernels within their bounds");
  return failed ? 1 : 0;
}
