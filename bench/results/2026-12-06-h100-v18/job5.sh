#!/usr/bin/env bash
# Job 5: NVIDIA's program binaries (PTX) of the fp32 forward at 64x56x56x128
# (group_channels 16 and 32) with the tree, for the SASS counts of
# job3/sass-forward.txt (job 1's copy was lost with its machine).
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
source .device/opencl-nvidia.sh
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache-fp32
rm -rf "$DCNV4_CACHE_DIR"
timeout 60 /tmp/build/bench/dcnv4-bench --ops core --forward-only --dtype float32 \
  --shape 64x56x56x128 --reps 5 --no-plot --out /tmp/fp32 2>&1 | grep -E "^forward"
tar czf "$out/cache-fp32.tgz" -C /tmp dcnv4-cache-fp32
