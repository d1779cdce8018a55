#!/usr/bin/env bash
# Job 4 (same warm machine): stage 4 with stage_point back on its own
# location code (job 3 timed it through locate_point: 1.23 ms), the default
# beside it, and the start-up table with its per-program lines.
set -u
out=${OUT:-/tmp/dcnv4-out}
source .device/opencl-nvidia.sh
cmake --build /tmp/build -j16 >/dev/null 2>&1 || echo "build failed"
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
for tuning in "" "dcnv4_forward.stage=4" ""; do
  DCNV4_TUNING="$tuning" timeout 60 /tmp/build/bench/dcnv4-bench --ops core --forward-only \
    --dtype float16 --shape 64x56x56x128 --group-channels 16 --reps 30 --no-plot \
    --out /tmp/stage-bench 2>&1 | grep -E "^forward" | sed "s/^/${tuning:-default}: /"
done
DCNV4_TUNING="dcnv4_forward.stage=4" timeout 60 /tmp/build/tests/test_dcnv4_random \
  --count 8 --dtype float16 --channels-multiple 16 2>&1 | tail -1
bash tools/device/startup.sh >"$out/startup.txt" 2>&1
