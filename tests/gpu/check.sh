#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU and PyTorch (whose LibTorch has CUDA), builds the
# kernels for that GPU and the LibTorch pieces that need no MPI/HDF5, then runs
#   1. kernel_cuda_tests: every kernel's CUDA implementation against its CPU twin (GoogleTest);
#   2. gpu_kernel_check: every kernel against its CPU twin and the plain LibTorch way on the GPU,
#      timed, with bandwidth / FLOP/s as a share of the measured device peak, and the fused
#      log-prob's peak memory against the plain way's; prints one table;
#   3. model_cuda_check: the language model and the generation engine on CUDA (parity with
#      transformers' fixtures, greedy tokens, bf16 throughput).
#   bash tests/gpu/check.sh [DEPS_DIR]
# DEPS_DIR (default .devcarry) holds what such a machine may lack, taken from Debian packages:
#   include/cblas.h, include/cblas_mangling.h (libblas-dev), include/nlohmann (nlohmann-json3-dev),
#   lib/libblas.so{,.3} + libopenblas.so.0[.xz] + libgfortran.so.5 + libquadmath.so.0
#   (libopenblas0-openmp), googletest/ (the googletest package's /usr/src/googletest/googletest);
#   tests/gpu/prepare_deps.sh DEPS_DIR gathers them on a Debian 12 machine.
# Environment: CUDA_ARCH (default: the GPU's, e.g. 90), BUILD (default /tmp/ovr_gpu_check),
# OUT (if set, the logs go there), SKIP_MODEL=1 skips step 3, KERNEL_FAMILIES="logprob norm ..." limits step 2,
# CPU_BENCH="T V H" adds step 4: bench/fused_logprob_bench on this machine's CPU cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
DEPS=$(realpath "${1:-.devcarry}")
BUILD=${BUILD:-/tmp/ovr_gpu_check}
CUDA=${CUDA_HOME:-/usr/local/cuda}
TORCH=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')
ARCH=${CUDA_ARCH:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)}
mkdir -p "$BUILD/obj" "$BUILD/lib"
LOG=${OUT:-$BUILD}
start=$(date +%s)

# OpenBLAS travels xz-compressed (the copied working tree is limited in size).
cp -a "$DEPS"/lib/. "$BUILD/lib/"
if [ -f "$BUILD/lib/libopenblas.so.0.xz" ]; then
  python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" \
    "$BUILD/lib/libopenblas.so.0.xz" "$BUILD/lib/libopenblas.so.0"
fi

TORCH_INC="-isystem $TORCH/include -isystem $TORCH/include/torch/csrc/api/include"
BASE="-std=c++17 -O3 -D_GLIBCXX_USE_CXX11_ABI=1 -I. -Isrc -isystem $DEPS/include -I$CUDA/include"
NVCC="$CUDA/bin/nvcc -std=c++17 -O3 -I. -gencode arch=compute_$ARCH,code=sm_$ARCH"
GTEST_INC="-isystem $DEPS/googletest/include"

# One compile command per line, run 16 at a time.
{
  for f in kernels/*.cu; do echo "$NVCC -DOVR_KERNELS_CUDA=1 -c $f -o $BUILD/obj/k_$(basename $f .cu)_cu.o"; done
  for f in kernels/*.cpp; do
    extra=""; case $f in *_cpu.cpp) extra="-fno-math-errno -fno-trapping-math";; esac
    echo "g++ $BASE -fopenmp $extra -DOVR_KERNELS_CUDA=1 -c $f -o $BUILD/obj/k_$(basename $f .cpp).o"
  done
  echo "g++ -std=c++17 -O2 $GTEST_INC -I$DEPS/googletest -c $DEPS/googletest/src/gtest-all.cc -o $BUILD/obj/gtest_all.o"
  echo "g++ -std=c++17 -O2 $GTEST_INC -c $DEPS/googletest/src/gtest_main.cc -o $BUILD/obj/gtest_main.o"
  for f in tests/*_cuda_test.cpp; do echo "g++ $BASE $GTEST_INC -c $f -o $BUILD/obj/t_$(basename $f .cpp).o"; done
  echo "g++ $BASE $TORCH_INC -DOVR_TORCH_CUDA -c src/ops/fused_logprob_op.cpp -o $BUILD/obj/c_fused_logprob_op.o"
  echo "g++ $BASE $TORCH_INC -DOVR_TORCH_CUDA -c src/ops/kernel_launch.cpp -o $BUILD/obj/c_kernel_launch.o"
  for f in tests/gpu/kernel_check_main.cpp tests/gpu/check_*.cpp; do
    echo "g++ $BASE $TORCH_INC -c $f -o $BUILD/obj/c_$(basename $f .cpp).o"
  done
  if [ -n "${CPU_BENCH:-}" ]; then
    echo "g++ $BASE -fopenmp -c bench/fused_logprob_bench.cpp -o $BUILD/obj/b_fused_logprob_bench.o"
    echo "g++ $BASE $TORCH_INC -c bench/fused_logprob_torch_baseline.cpp -o $BUILD/obj/b_fused_logprob_torch_baseline.o"
  fi
  if [ "${SKIP_MODEL:-0}" != 1 ]; then
    for f in src/model/qwen2.cpp src/model/fused_ops.cpp src/model/rotary.cpp src/model/qwen2_config.cpp src/engine/generation.cpp \
             src/engine/paged_kv_cache.cpp src/engine/sampling.cpp src/io/fs.cpp src/io/safetensors.cpp src/io/dtype.cpp \
             tests/gpu/model_cuda_check.cpp; do
      echo "g++ $BASE $TORCH_INC -c $f -o $BUILD/obj/m_$(basename $f .cpp).o"
    done
  fi
} > "$BUILD/compile.txt"
if ! xargs -d '\n' -n 1 -P 16 sh -c '$0 || { echo "compile failed: $0" >&2; exit 1; }' < "$BUILD/compile.txt" 2> "$LOG/build.log"; then
  # Keep going: what compiled is still linked and run; the failures are in build.log.
  grep -m 40 -E "error|compile failed" "$LOG/build.log" >&2 || true
fi

CUDA_LIBS="-L$CUDA/lib64 -Wl,-rpath,$CUDA/lib64 -lcudart -lcublas"
BLAS="-L$BUILD/lib -Wl,-rpath,$BUILD/lib -lblas -fopenmp"
TORCH_LIBS="-L$TORCH/lib -Wl,-rpath,$TORCH/lib -Wl,--no-as-needed -ltorch -ltorch_cuda -ltorch_cpu -lc10_cuda -lc10 -Wl,--as-needed"
status=0
link() {  # link OUTPUT ARGS...: a failed link is reported and fails the check, the other steps still run
  local out=$1; shift
  g++ "$@" -o "$BUILD/$out" 2>> "$LOG/build.log" || { echo "link failed: $out (see build.log)"; tail -5 "$LOG/build.log"; status=1; }
}
link kernel_cuda_tests "$BUILD"/obj/t_*.o "$BUILD"/obj/k_*.o "$BUILD"/obj/gtest_all.o "$BUILD"/obj/gtest_main.o \
  $CUDA_LIBS $BLAS -lpthread
link gpu_kernel_check "$BUILD"/obj/c_*.o "$BUILD"/obj/k_*.o $TORCH_LIBS $CUDA_LIBS $BLAS -lpthread
if [ -n "${CPU_BENCH:-}" ]; then
  link fused_logprob_bench "$BUILD"/obj/b_fused_logprob_bench.o "$BUILD"/obj/k_*.o $CUDA_LIBS $BLAS -lpthread
  link fused_logprob_torch_baseline "$BUILD"/obj/b_fused_logprob_torch_baseline.o $TORCH_LIBS
fi
if [ "${SKIP_MODEL:-0}" != 1 ]; then
  link model_cuda_check "$BUILD"/obj/m_*.o "$BUILD"/obj/c_kernel_launch.o "$BUILD"/obj/k_*.o $TORCH_LIBS $CUDA_LIBS $BLAS
fi
echo "built in $(( $(date +%s) - start )) s for sm_$ARCH against torch $(python3 -c 'import torch; print(torch.__version__)')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

export OMP_NUM_THREADS=${OMP_NUM_THREADS:-16}
run() {  # run NAME ARGS...: the output is kept in $LOG/NAME.log; a failure fails the check
  local name=$1; shift
  [ -x "$BUILD/$name" ] || return 0
  "$BUILD/$name" "$@" 2>&1 | tee "$LOG/$name.log" || status=1
  echo "$name: done $(( $(date +%s) - start )) s after the start"
}
run kernel_cuda_tests --gtest_brief=1
run gpu_kernel_check ${KERNEL_FAMILIES:-}
[ "${SKIP_MODEL:-0}" = 1 ] || run model_cuda_check tests/fixtures/qwen2_5_vl_tiny
# 4. (CPU_BENCH="T V H", optional) the CPU bench of the fused log-prob against LibTorch on this
#    machine's cores: OpenBLAS for ours, LibTorch's own BLAS (MKL in the PyTorch wheels) for it.
if [ -n "${CPU_BENCH:-}" ]; then
  run fused_logprob_bench $CPU_BENCH --threads "$(nproc)" --baseline "$BUILD/fused_logprob_torch_baseline"
  mv "$LOG/fused_logprob_bench.log" "$LOG/cpu_bench.log" 2>/dev/null || true
  run fused_logprob_bench $CPU_BENCH --threads "$(nproc)" --one-call
  cat "$LOG/fused_logprob_bench.log" >> "$LOG/cpu_bench.log" 2>/dev/null || true
fi
echo "gpu check done in $(( $(date +%s) - start )) s, status $status"
exit $status
