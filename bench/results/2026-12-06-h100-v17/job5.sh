#!/usr/bin/env bash
# Job 5: rolled point loops (dcnv4_forward.unroll=0) against the unrolled
# default, all 40 forward rows: whether the small rows, which run each
# warp through the unrolled code about once, wait on instruction fetch.
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
{
  echo "#### float32 round 5 (tree, unroll=0)"
  timeout 60 bash tools/device/sweep.sh "--ops core --forward-only --reps 20 --dtype float32" \
    "" "dcnv4_forward.unroll=0"
  echo "#### float16 round 5 (tree, unroll=0)"
  timeout 90 bash tools/device/sweep.sh "--ops core --forward-only --reps 20 --dtype float16" \
    "" "dcnv4_forward.unroll=0"
} 2>&1 | tee "$out/sweep-summary.txt" | grep -E -c "^forward"
