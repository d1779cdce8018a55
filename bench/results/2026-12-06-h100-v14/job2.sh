#!/usr/bin/env bash
# Job 2 of 2026-12-06 (same tree as job 1): the fp16 forward's pieces=2 with
# no register cap against the default on the paper's fp16 rows, group_channels
# 32 in two rounds, 16 in one. From the project root on the GPU machine with
# .device carried.
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
f=dcnv4_forward
A="--ops core --forward-only --reps 30 --dtype float16"
{
  for round in 1 2; do
    echo "#### fp16 gc 32 round $round"
    timeout 120 bash tools/device/sweep.sh "$A --group-channels 32" "" \
      "$f.pieces=2;$f.regs=0" "$f.pieces=2;$f.regs=56"
  done
  echo "#### fp16 gc 16"
  timeout 90 bash tools/device/sweep.sh "$A --group-channels 16" "" "$f.pieces=2;$f.regs=0"
} 2>&1 | tee "$out/sweep-summary.txt"
