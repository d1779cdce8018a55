#!/usr/bin/env bash
# Times the benchmark under several DCNV4_TUNING settings on the device
# machine (after gpu_job.sh built /tmp/build). Prints the benchmark's rows
# (operator, layer and FlashInternImage) for each; SWEEP_TIMEOUT (seconds,
# default 120) bounds each run.
#   bash tools/device/sweep.sh "BENCH ARGS" "TUNING1" "TUNING2" ...
args=$1; shift
out=${OUT:-/tmp/dcnv4-out}
mkdir -p "$out"
source .device/opencl-nvidia.sh
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
for t in "$@"; do
  # shellcheck disable=SC2086
  DCNV4_TUNING="$t" timeout "${SWEEP_TIMEOUT:-120}" /tmp/build/bench/dcnv4-bench --no-plot \
    --out /tmp/sweep $args >/tmp/sweep.log 2>&1
  echo "== $t"
  grep -E "^(forward|backward|forward\+backward|layer|fii) " /tmp/sweep.log
  cat /tmp/sweep.log >>"$out/sweep.log"
done
