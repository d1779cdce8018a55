#!/usr/bin/env bash
# Job 1: the tree's forward on all 40 rows (fp32, fp16), and NVIDIA's program
# binaries (PTX) of every forward configuration, to read their SASS here
# (ptxas, cuobjdump) and count where the instructions go.
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
source .device/opencl-nvidia.sh
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
rm -rf /tmp/dcnv4-cache
{
  for dt in float32 float16; do
    echo "#### $dt round 1 (tree)"
    timeout 90 bash tools/device/sweep.sh "--ops core --forward-only --reps 20 --dtype $dt" ""
  done
} 2>&1 | tee "$out/sweep-summary.txt" | grep -E -c "^forward"
tar czf "$out/cache.tgz" -C /tmp dcnv4-cache
ls -la "$out"
