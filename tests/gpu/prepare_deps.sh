#!/usr/bin/env bash
# Gathers, on a Debian 12 machine with ovr's build dependencies installed (scripts/install-deps.sh),
# what tests/gpu/check.sh needs on a GPU machine that has PyTorch but not these packages:
#   bash tests/gpu/prepare_deps.sh [DIR]     (default .devcarry, which .git/info/exclude should list)
# then copy the repository with DIR to the GPU machine and run `bash tests/gpu/check.sh DIR` there.
# OpenBLAS is stored xz-compressed (about 4 MB instead of 35); check.sh unpacks it.
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=${1:-.devcarry}
ARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
need() { [ -e "$1" ] || { echo "prepare_deps: $1 is missing (install $2)" >&2; exit 1; }; }
need /usr/include/$ARCH/cblas.h libblas-dev
need /usr/lib/$ARCH/openblas-openmp/libopenblas.so.0 libopenblas0-openmp
need /usr/include/nlohmann/json.hpp nlohmann-json3-dev
need /usr/src/googletest/googletest/src/gtest-all.cc googletest
rm -rf "$DIR"; mkdir -p "$DIR/include" "$DIR/lib"
cp /usr/include/$ARCH/cblas.h /usr/include/$ARCH/cblas_mangling.h "$DIR/include/"
cp -r /usr/include/nlohmann "$DIR/include/"
cp -L /usr/lib/$ARCH/openblas-openmp/libblas.so.3 /lib/$ARCH/libgfortran.so.5 /lib/$ARCH/libquadmath.so.0 "$DIR/lib/"
ln -s libblas.so.3 "$DIR/lib/libblas.so"
xz -T0 -c /usr/lib/$ARCH/openblas-openmp/libopenblas.so.0 > "$DIR/lib/libopenblas.so.0.xz"
mkdir -p "$DIR/googletest" && cp -r /usr/src/googletest/googletest/{include,src} "$DIR/googletest/"
du -sh "$DIR"
