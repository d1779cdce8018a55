#!/usr/bin/env bash
# Job 3 of 2026-12-06: the final tree (pieces=2, uncapped, as NVIDIA's
# default for 16-bit storage at group_channels 32): quick tests, then the
# forward rows of fp16 at group_channels 32 and the fp32 headline with the
# built-in defaults.
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests quick --bench none
timeout 60 bash tools/device/sweep.sh "--ops core --forward-only --reps 30 --dtype float16 --group-channels 32" "" |
  tee "$out/sweep-summary.txt"
timeout 30 bash tools/device/sweep.sh "--ops core --forward-only --reps 30 --dtype float32 --group-channels 16 --shape 64x56x56x128" "" |
  tee -a "$out/sweep-summary.txt"
