#!/usr/bin/env bash
# Sets up a Debian 12 machine (run as root) and builds dcnv4 into build/.
#   bash tools/setup.sh [extra cmake options]
# Installs Debian packages: compilers, CMake, the OpenCL ICD loader and
# headers, CLBlast, PoCL (the CPU device every test runs on), cJSON, gnuplot
# (benchmark plots), clinfo, and the checkers oclgrind and valgrind (their
# tests are registered when they are found); then Intel's OpenCL CPU runtime
# from PyPI into .deps/ (tools/setup_intel_opencl.sh; python3-pip fetches
# it; DCNV4_INTEL_OPENCL=0 skips it). BUILD_DIR overrides the build folder.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ninja-build pkg-config ocl-icd-libopencl1
          ocl-icd-opencl-dev opencl-c-headers libclblast-dev pocl-opencl-icd
          libcjson-dev gnuplot-nox clinfo oclgrind valgrind python3-pip
          # FlashInternImage tools: libjpeg and stb_image for dcnv4-classify;
          # PyTorch for tools/convert_checkpoint.py; PIL and torchvision for
          # the tests that hold the preprocessing to upstream's transforms.
          libjpeg-dev libstb-dev python3-numpy python3-torch python3-pil
          python3-torchvision)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi

if [[ "${DCNV4_INTEL_OPENCL:-1}" != 0 ]]; then
  bash tools/setup_intel_opencl.sh
fi

build="${BUILD_DIR:-build}"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build"
