#!/usr/bin/env bash
# Job 4: the forward's stage 2 (a group's offsets loaded once, spread over
# its work-items and exchanged by warp shuffles), last timed on the H100 in
# v7, before work-groups of 2 groups (v8): now with the current defaults and
# register caps, 3 shapes x group_channels 16/32, fp32 and fp16, one round.
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
f=dcnv4_forward
S="--ops core --forward-only --reps 30 --shape 64x56x56x128 --shape 64x14x14x512 --shape 1x200x320x128"
{
  for round in 1; do
    echo "#### fp32 round $round"
    timeout 150 bash tools/device/sweep.sh "$S --dtype float32" "" "$f.stage=2" "$f.stage=2;$f.regs=56" "$f.stage=2;$f.regs=64"
    echo "#### fp16 round $round"
    timeout 150 bash tools/device/sweep.sh "$S --dtype float16" "" "$f.stage=2;$f.pieces=1" "$f.stage=2;$f.pieces=1;$f.regs=48" "$f.stage=2;$f.pieces=1;$f.regs=0"
  done
} 2>&1 | tee "$out/sweep-summary.txt"
