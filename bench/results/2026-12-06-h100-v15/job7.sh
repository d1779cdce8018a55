#!/usr/bin/env bash
# Job 7: 256-byte L2 fetch hints (PTX ld.global.nc.L2::256B), kernel variants
# through DCNV4_KERNEL_DIR: om256h on the offset loads (fp32 and fp16),
# in256 on the fp32 corner loads, both256 on both; two rounds.
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
v=$PWD/.device/variants
S="--ops core --forward-only --reps 30 --shape 64x56x56x128 --shape 64x14x14x512 --shape 1x200x320x128"
{
  for round in 1 2; do
    echo "#### fp32 round $round (default, om256h, in256, both256)"
    timeout 40 bash tools/device/sweep.sh "$S --dtype float32" ""
    for k in om256h in256 both256; do
      DCNV4_KERNEL_DIR=$v/$k timeout 40 bash tools/device/sweep.sh "$S --dtype float32" ""
    done
    echo "#### fp16 round $round (default, om256h)"
    timeout 40 bash tools/device/sweep.sh "$S --dtype float16" ""
    DCNV4_KERNEL_DIR=$v/om256h timeout 40 bash tools/device/sweep.sh "$S --dtype float16" ""
  done
} 2>&1 | tee "$out/sweep-summary.txt"
