#!/usr/bin/env bash
# Configures and builds ovr in build/ (Release, ccache when present). Extra args go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build -j "${OVR_JOBS:-2}"
