#!/usr/bin/env bash
# Job 2: the 10 paper rows of fp16 at group_channels 32, default against
# texture=1, two rounds; bf16 at group_channels 32 (the 16-bit entry's
# pieces=2 uncapped, untimed before) against pieces=1 with the 40-register cap
# that was its default until eb4806b.
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
f=dcnv4_forward
A="--ops core --forward-only --reps 30 --group-channels 32"
{
  for round in 1 2; do
    echo "#### fp16 D32 round $round"
    timeout 130 bash tools/device/sweep.sh "$A --dtype float16" "" "$f.texture=1"
  done
  echo "#### bf16 D32"
  timeout 130 bash tools/device/sweep.sh "$A --dtype bfloat16" "" "$f.pieces=1;$f.regs=40"
} 2>&1 | tee "$out/sweep-summary.txt"
