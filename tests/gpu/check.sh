#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU and PyTorch (whose LibTorch has CUDA), builds
# the LibTorch parts of ovr that need no MPI/HDF5 and runs tests/gpu/model_cuda_check.cpp.
#   bash tests/gpu/check.sh [NLOHMANN_INCLUDE_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
TORCH=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')
EXTRA_INC="${1:-/usr/include}"
BUILD=${BUILD:-/tmp/ovr_gpu_check}
mkdir -p "$BUILD"
FLAGS="-std=c++17 -O2 -D_GLIBCXX_USE_CXX11_ABI=1 -I src -isystem $EXTRA_INC -isystem $TORCH/include -isystem $TORCH/include/torch/csrc/api/include"
SOURCES="src/model/qwen2.cpp src/model/rotary.cpp src/model/qwen2_config.cpp src/rl/generation.cpp src/rl/paged_kv_cache.cpp
         src/rl/sampling.cpp src/io/fs.cpp src/io/safetensors.cpp src/io/dtype.cpp tests/gpu/model_cuda_check.cpp"
start=$(date +%s)
printf '%s\n' $SOURCES | xargs -P 16 -I{} sh -c "g++ $FLAGS -c {} -o $BUILD/\$(basename {} .cpp).o"
g++ $BUILD/*.o -o $BUILD/model_cuda_check -L$TORCH/lib -Wl,-rpath,$TORCH/lib -Wl,--no-as-needed \
  -ltorch -ltorch_cuda -ltorch_cpu -lc10_cuda -lc10
echo "built in $(( $(date +%s) - start )) s against torch $(python3 -c 'import torch; print(torch.__version__)')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$BUILD/model_cuda_check" tests/fixtures/qwen2_5_vl_tiny
