#!/usr/bin/env bash
# Job 3: the rows with the lowest fractions (one partial wave of work-groups
# or less) under register caps and smaller work-groups that fit more
# work-groups per SM: 4 shapes x group_channels 16/32, fp32 and fp16.
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
f=dcnv4_forward
S="--ops core --forward-only --reps 40 --shape 1x25x40x1024 --shape 1x50x80x512 --shape 64x7x7x1024 --shape 1x100x160x256"
{
  echo "#### fp32"
  timeout 200 bash tools/device/sweep.sh "$S --dtype float32" "" "$f.regs=32" "$f.regs=40" \
    "$f.local=128" "$f.regs=40;$f.local=128" ""
  echo "#### fp16"
  timeout 200 bash tools/device/sweep.sh "$S --dtype float16" "" "$f.regs=32;$f.pieces=1" \
    "$f.regs=40;$f.pieces=1" "$f.local=128" "$f.regs=32" ""
} 2>&1 | tee "$out/sweep-summary.txt"
