#!/usr/bin/env bash
# Builds ovr and runs every test: unit, MPI (mpiexec -n 1/2/3) and command-line tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j "${OVR_JOBS:-2}" --timeout 600
