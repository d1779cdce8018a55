#!/usr/bin/env bash
# Runs a command with Intel's OpenCL CPU runtime (installed into .deps/ by
# tools/setup_intel_opencl.sh) visible to Debian's ICD loader beside the
# system's ICDs, and selected: DCNV4_DEVICE=intel unless already set.
#   tools/with_intel_opencl.sh build/tools/dcnv4-devices
#   tools/with_intel_opencl.sh ctest --test-dir build -L '^intel$'
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)/.deps/intel-opencl"
if [[ ! -f "$root/lib/libintelocl.so" || ! -d "$root/vendors" ]]; then
  echo "with_intel_opencl.sh: run tools/setup_intel_opencl.sh first" >&2
  exit 1
fi
export OCL_ICD_VENDORS="$root/vendors"
export LD_LIBRARY_PATH="$root/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DCNV4_DEVICE="${DCNV4_DEVICE:-intel}"
exec "$@"
