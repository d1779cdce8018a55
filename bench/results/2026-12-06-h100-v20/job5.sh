#!/usr/bin/env bash
# Job 5 (same warm machine): stage 4 as v19 timed it (no register cap:
# regs=0; job 3 and 4 ran it under fp16's default cap of 40), with
# stage_point's own location code (the tree) and through locate_point
# (.device/cl-locate, a copy of cl/ with that change), two rounds.
set -u
source .device/opencl-nvidia.sh
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
for round in 1 2; do
  for kdir in "" "$PWD/.device/cl-locate"; do
    DCNV4_KERNEL_DIR="$kdir" DCNV4_TUNING="dcnv4_forward.stage=4;dcnv4_forward.regs=0" \
      timeout 60 /tmp/build/bench/dcnv4-bench --ops core --forward-only \
      --dtype float16 --shape 64x56x56x128 --group-channels 16 --reps 30 --no-plot \
      --out /tmp/stage-bench 2>&1 | grep -E "^forward" | sed "s#^#round $round ${kdir:-tree}: #"
  done
done
