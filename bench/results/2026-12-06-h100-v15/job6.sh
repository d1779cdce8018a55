#!/usr/bin/env bash
# Job 6: does the offset stream add to the gathers? Kernel variants through
# DCNV4_KERNEL_DIR (.device/variants/, made from this tree's cl/ by the
# script in this folder's README): pf64 and pf256 bring each work-item's
# offset row 64 or 256 output rows ahead into L2 (PTX prefetch.global.L2);
# om256 loads the offsets with a 256-byte L2 fetch hint (fp32).
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
v=$PWD/.device/variants
S="--ops core --forward-only --reps 30 --shape 64x56x56x128 --shape 64x14x14x512 --shape 1x200x320x128"
{
  echo "#### fp32 (default, pf64, pf256, om256, default)"
  timeout 40 bash tools/device/sweep.sh "$S --dtype float32" ""
  for k in pf64 pf256 om256; do
    DCNV4_KERNEL_DIR=$v/$k timeout 40 bash tools/device/sweep.sh "$S --dtype float32" ""
  done
  timeout 40 bash tools/device/sweep.sh "$S --dtype float32" ""
  echo "#### fp16 (default, pf64, pf256)"
  timeout 40 bash tools/device/sweep.sh "$S --dtype float16" ""
  for k in pf64 pf256; do
    DCNV4_KERNEL_DIR=$v/$k timeout 40 bash tools/device/sweep.sh "$S --dtype float16" ""
  done
} 2>&1 | tee "$out/sweep-summary.txt"
grep -c "built from source" /tmp/sweep.log
