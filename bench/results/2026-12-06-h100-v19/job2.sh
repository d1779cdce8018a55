#!/usr/bin/env bash
# Job 2: stage 4 with three points in flight and the offsets loaded a few
# points ahead (job 1's stage 4 waited a memory latency per point: three
# times slower than stage 0). Its tests, fp16 on the 20 paper rows against
# the default, work-group sizes on the headline shape; program cache back.
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
source .device/opencl-nvidia.sh
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
T4="dcnv4_forward.stage=4;dcnv4_forward.regs=0"
t0=$(date +%s)
{
  echo "stage4 random float16: $(DCNV4_TUNING=$T4 timeout 60 /tmp/build/tests/test_dcnv4_random --count 15 --dtype float16 2>&1 | tail -1)"
  echo "stage4 random bfloat16: $(DCNV4_TUNING=$T4 timeout 60 /tmp/build/tests/test_dcnv4_random --count 10 --dtype bfloat16 2>&1 | tail -1)"
  echo "stage4 nonfinite: $(DCNV4_TUNING=$T4 timeout 60 /tmp/build/tests/test_nonfinite 2>&1 | tail -1)"
  echo "stage4 golden: $(DCNV4_TUNING=$T4 timeout 60 /tmp/build/tests/test_golden .device/golden dcnv4 2>&1 | tail -1)"
  echo "elapsed $(( $(date +%s) - t0 )) s"
} 2>&1 | tee "$out/tests.txt"
{
  S="--ops core --forward-only --reps 20 --dtype float16 --shape 64x56x56x128"
  echo "#### float16 headline: default; stage 4 with 96, 64, 32 work-items"
  timeout 90 bash tools/device/sweep.sh "$S" "" "$T4" "$T4;dcnv4_forward.local=64" \
    "$T4;dcnv4_forward.local=32"
  tar czf "$out/cache.tgz" -C /tmp dcnv4-cache
  S="--ops core --forward-only --reps 20 --dtype float16"
  echo "#### float16 20 rows: default, stage 4"
  timeout 160 bash tools/device/sweep.sh "$S" "" "$T4"
  echo "elapsed $(( $(date +%s) - t0 )) s"
} 2>&1 | tee "$out/sweep-summary.txt"
tar czf "$out/cache.tgz" -C /tmp dcnv4-cache
