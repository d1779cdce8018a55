#!/usr/bin/env bash
# Job 3 (job 2 ran out of time in its sweeps; its correctness checks all
# passed): fp16 forward on the 20 paper rows, base (8edd50d) against the
# tree (predicated corner loads for one piece) and pred2 (also for two
# pieces), two rounds; pred2 with pieces=2; the bf16 headline. Variants as
# in job2.sh. NVIDIA's program binaries come back in cache.tgz.
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
source .device/opencl-nvidia.sh
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
rm -rf /tmp/dcnv4-cache
v=$PWD/.device/variants
t0=$(date +%s)
{
  S="--ops core --forward-only --reps 20 --dtype float16"
  for r in 1 2; do
    echo "#### float16 round $r (base, tree, pred2)"
    DCNV4_KERNEL_DIR=$v/base timeout 70 bash tools/device/sweep.sh "$S" ""
    timeout 70 bash tools/device/sweep.sh "$S" ""
    DCNV4_KERNEL_DIR=$v/pred2 timeout 70 bash tools/device/sweep.sh "$S" ""
    echo "elapsed $(( $(date +%s) - t0 )) s"
    tar czf "$out/cache.tgz" -C /tmp dcnv4-cache
  done
  echo "#### float16 pred2 pieces=2"
  DCNV4_KERNEL_DIR=$v/pred2 timeout 70 bash tools/device/sweep.sh "$S" "dcnv4_forward.pieces=2"
  S="--ops core --forward-only --reps 20 --dtype bfloat16 --shape 64x56x56x128"
  echo "#### bfloat16 headline (base, tree, pred2)"
  DCNV4_KERNEL_DIR=$v/base timeout 40 bash tools/device/sweep.sh "$S" ""
  timeout 40 bash tools/device/sweep.sh "$S" ""
  DCNV4_KERNEL_DIR=$v/pred2 timeout 40 bash tools/device/sweep.sh "$S" ""
  echo "elapsed $(( $(date +%s) - t0 )) s"
} 2>&1 | tee "$out/sweep-summary.txt" | grep -E "^####|^elapsed"
tar czf "$out/cache.tgz" -C /tmp dcnv4-cache
