#!/usr/bin/env bash
# Installs what ovr needs to build and test on Debian 12 / Ubuntu 22.04+ (run as root or with sudo).
# Clusters use environment modules instead: see INSTALL.md.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# libopenblas0-openmp: without it Debian's LibTorch uses the reference BLAS, 15-20x slower; libblas-dev: cblas.h
# for kernels/ (the library it links resolves to OpenBLAS through the alternative set below).
# python3-h5py / numpy / pandas / matplotlib: postprocess/ and the h5py readability test.
$SUDO apt-get install -y -q --no-install-recommends \
  build-essential cmake git ccache pkg-config time \
  libtorch-dev libopenblas0-openmp libblas-dev \
  libopenmpi-dev openmpi-bin \
  libhdf5-openmpi-dev hdf5-tools \
  libboost-program-options-dev nlohmann-json3-dev zlib1g-dev libisal-dev libpng-dev libjpeg62-turbo-dev libpcre2-dev libicu-dev \
  libgtest-dev libgmock-dev libbenchmark-dev \
  python3 python3-h5py python3-numpy python3-pandas python3-matplotlib
# tests/slurm/ runs the jobs/slurm/ scripts on a real single-node Slurm that it starts itself (its own
# munged, slurmctld and slurmd under a temporary directory, not the system services). libpmix-dev
# holds the unversioned libpmix.so that `srun --mpi=pmix` loads; the slurm-wlm metapackage would
# add ~35 recommended plugin packages, hence the three daemons' packages alone.
$SUDO apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge libpmix-dev
# Other packages may pull in the pthread flavour of OpenBLAS, which can win the alternative; the
# OpenMP flavour is the one whose threads torch::set_num_threads (and OMP_NUM_THREADS) control.
for lib in libblas.so.3 liblapack.so.3; do
  target=/usr/lib/x86_64-linux-gnu/openblas-openmp/$lib
  if [ -e "$target" ]; then $SUDO update-alternatives --set "$lib-x86_64-linux-gnu" "$target" >/dev/null; fi
done
