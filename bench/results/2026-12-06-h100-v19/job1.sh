#!/usr/bin/env bash
# Job 1: the tensor-core stage of the DCNv4 forward (stage 4, cl/warp_mma.h)
# on the H100: its tests under DCNV4_TUNING, then fp16 on the 20 paper rows
# against the default (stage 0), and a few work-group sizes. The program
# cache comes back for the SASS (tools/device/ptx_stats.sh).
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
source .device/opencl-nvidia.sh
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
T4="dcnv4_forward.stage=4;dcnv4_forward.regs=0;dcnv4_forward.local=128"
t0=$(date +%s)
{
  for dt in float16 bfloat16; do
    echo "stage4 random $dt: $(DCNV4_TUNING=$T4 timeout 90 /tmp/build/tests/test_dcnv4_random --count 30 --dtype $dt 2>&1 | tail -1)"
  done
  echo "stage4 nonfinite: $(DCNV4_TUNING=$T4 timeout 60 /tmp/build/tests/test_nonfinite 2>&1 | tail -1)"
  echo "stage4 golden: $(DCNV4_TUNING=$T4 timeout 60 /tmp/build/tests/test_golden .device/golden dcnv4 2>&1 | tail -1)"
  echo "elapsed $(( $(date +%s) - t0 )) s"
} 2>&1 | tee "$out/tests.txt"
{
  S="--ops core --forward-only --reps 20 --dtype float16"
  echo "#### float16 20 rows: default, stage 4"
  timeout 160 bash tools/device/sweep.sh "$S" "" "$T4"
  echo "elapsed $(( $(date +%s) - t0 )) s"
  tar czf "$out/cache.tgz" -C /tmp dcnv4-cache
  S="--ops core --forward-only --reps 20 --dtype float16 --shape 64x56x56x128"
  echo "#### float16 headline: local 64, 256, regs 128"
  timeout 60 bash tools/device/sweep.sh "$S" \
    "dcnv4_forward.stage=4;dcnv4_forward.regs=0;dcnv4_forward.local=64" \
    "dcnv4_forward.stage=4;dcnv4_forward.regs=0;dcnv4_forward.local=256" \
    "dcnv4_forward.stage=4;dcnv4_forward.regs=128;dcnv4_forward.local=128"
  S="--ops core --forward-only --reps 20 --dtype bfloat16 --shape 64x56x56x128"
  echo "#### bfloat16 headline: default, stage 4"
  timeout 40 bash tools/device/sweep.sh "$S" "" "$T4"
  echo "elapsed $(( $(date +%s) - t0 )) s"
} 2>&1 | tee "$out/sweep-summary.txt"
tar czf "$out/cache.tgz" -C /tmp dcnv4-cache
