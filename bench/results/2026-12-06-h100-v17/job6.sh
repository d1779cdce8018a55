#!/usr/bin/env bash
# Job 6 (prepared, not run): whether Nsight Compute sees the OpenCL forward.
# The device image has ncu (KINDS.md: it read a CUDA kernel's counters on the
# Firecracker runtime); NVIDIA's OpenCL runs on the same driver, but no one
# has tried ncu on it here. If it works, the stall reasons of the small rows
# (1x25x40x1024, 16-20 us) and of the headline row say what bounds them.
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
source .device/opencl-nvidia.sh
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu
for shape in 1x25x40x1024 64x56x56x128; do
  timeout 240 ncu --clock-control none --target-processes all -k regex:dcnv4_forward \
    -c 3 --set full --import-source no -o "$out/ncu-$shape" \
    /tmp/build/bench/dcnv4-bench --ops core --forward-only --reps 3 --dtype float16 \
    --group-channels 32 --shape $shape --no-plot --out /tmp/ncu-bench \
    >"$out/ncu-$shape.log" 2>&1
  tail -5 "$out/ncu-$shape.log"
  [ -f "$out/ncu-$shape.ncu-rep" ] &&
    ncu --import "$out/ncu-$shape.ncu-rep" --page details --section WarpStateStats \
      --section Occupancy --section LaunchStats >"$out/ncu-$shape.txt" 2>&1 &&
    head -80 "$out/ncu-$shape.txt"
done
