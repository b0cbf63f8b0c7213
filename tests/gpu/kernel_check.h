// The GPU kernel check's shared pieces (tests/gpu/check.sh builds it against an official LibTorch
// with CUDA and runs it on a machine with an NVIDIA GPU). Each kernel family has one check_*.cpp
// that compares the CUDA kernel with its CPU twin and with a plain LibTorch implementation on the
// GPU, times both, and adds rows to the one table that kernel_check_main.cpp prints.
#pragma once
#include <ATen/ATen.h>

#include <cmath>
#include <functional>
#include <string>

namespace ovr::gpucheck {

struct Row {
  std::string kernel;             // e.g. "rmsnorm fwd bf16 16384x3584"
  double err_cpu = NAN;           // max |CUDA - CPU twin| (relative to max |CPU twin| where noted in `note`)
  double err_torch = NAN;         // max |CUDA - plain LibTorch on the GPU|
  double tol = NAN;               // the bound both errors must stay within (pass/fail)
  double ms = NAN;                // our kernel, mean per call
  double torch_ms = NAN;          // the plain LibTorch way, mean per call
  double bytes = 0;               // bytes the kernel must move at least (reads + writes): bandwidth = bytes / ms
  double flops = 0;               // or FLOPs, for GEMM-bound kernels
  bool bf16_flops = false;        // FLOP/s measured against the bf16 GEMM peak instead of fp32
  double peak_mib = NAN;          // peak device memory of our kernel above its inputs (MiB)
  double torch_peak_mib = NAN;    // same for the plain way
  std::string note;
};

// Adds a row to the table (printed at the end by main); a row whose error exceeds tol fails the check.
void report(const Row& row);

// Mean milliseconds per call of f on the current CUDA stream (CUDA events), after `warmup` calls.
double time_ms(const std::function<void()>& f, int warmup = 3, int iters = 20);

// Peak device memory (MiB) allocated by f above what was allocated before it (LibTorch's caching
// allocator statistics; kernels that allocate with cudaMallocAsync are measured by the caller with
// cudaMemGetInfo instead).
double peak_extra_mib(const std::function<void()>& f);

// Returns LibTorch's cached, unused device memory to the driver (between a check's big cases).
void empty_cache();

// The current CUDA stream of LibTorch, as the void* the kernels take.
void* stream();

// max |a - b| over all elements, computed in double on the GPU (any dtypes, any devices).
double max_abs_diff(const at::Tensor& a, const at::Tensor& b);

// The check of each kernel family: each calls report() once per (kernel, direction, dtype, shape).
void check_fused_logprob();
void check_norm_act_rope();     // RMSNorm, SwiGLU, (M-)RoPE
void check_adamw();
void check_sampling();
void check_gae();

}  // namespace ovr::gpucheck
