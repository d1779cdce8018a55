#!/usr/bin/env bash
# Job 3 (same warm machine, after job 2): what job 1 had no time left for.
# The fp16 headline forward with the default and with stage 4, cold/warm
# start, stage 4's bf16 and non-finite tests, then dcnv4_random_full.
set -u
out=${OUT:-/tmp/dcnv4-out}
source .device/opencl-nvidia.sh
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
for tuning in "" "dcnv4_forward.stage=4"; do
  DCNV4_TUNING="$tuning" timeout 60 /tmp/build/bench/dcnv4-bench --ops core --forward-only \
    --dtype float16 --shape 64x56x56x128 --group-channels 16 --reps 30 --no-plot \
    --out "$out/stage-${tuning:-default}" 2>&1 | grep -E "^forward" | sed "s/^/${tuning:-default}: /"
done
t0=$(date +%s)
bash tools/device/startup.sh >"$out/startup.txt" 2>&1; head -4 "$out/startup.txt"
echo "startup: $(( $(date +%s) - t0 )) s"
DCNV4_TUNING="dcnv4_forward.stage=4" timeout 120 /tmp/build/tests/test_dcnv4_random \
  --count 10 --dtype bfloat16 --channels-multiple 16 >"$out/random-stage4-bfloat16.log" 2>&1
echo "stage 4 bfloat16: rc $? $(tail -1 "$out/random-stage4-bfloat16.log")"
DCNV4_TUNING="dcnv4_forward.stage=4" timeout 60 /tmp/build/tests/test_nonfinite \
  >"$out/nonfinite-stage4.log" 2>&1; echo "stage 4 nonfinite: rc $?"
t0=$(date +%s)
(cd /tmp/build && timeout 280 ctest -R "dcnv4_random_full" --output-on-failure --timeout 270) \
  >"$out/ctest-dcnv4-random-full.log" 2>&1
grep -E "tests passed|tests failed|Failed|Timeout|\*\*\*" "$out/ctest-dcnv4-random-full.log" | tail -4
echo "dcnv4_random_full: $(( $(date +%s) - t0 )) s"
