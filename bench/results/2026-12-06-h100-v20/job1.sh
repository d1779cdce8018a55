#!/usr/bin/env bash
# Job 1 (final tree, H100): build, the quick suite, the exhaustive random
# suites, NVIDIA-only paths at more configurations, stage 4 (opt-in) after
# its refactor onto locate_point, and cold/warm start.
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests quick --bench none --test-timeout 200
source .device/opencl-nvidia.sh
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
t0=$(date +%s)
(cd /tmp/build && timeout 240 ctest -R "_full$" -j4 --output-on-failure) \
  >"$out/ctest-full.log" 2>&1
grep -E "tests passed|tests failed|Failed|\*\*\*" "$out/ctest-full.log" | tail -8
echo "full suites: $(( $(date +%s) - t0 )) s"
for dt in float16 bfloat16; do
  timeout 90 /tmp/build/tests/test_dcnv4_random --count 30 --dtype $dt \
    >"$out/random-$dt.log" 2>&1; echo "default $dt: rc $? $(tail -1 "$out/random-$dt.log")"
  DCNV4_TUNING="dcnv4_forward.stage=4" timeout 90 /tmp/build/tests/test_dcnv4_random \
    --count 15 --dtype $dt --channels-multiple 16 >"$out/random-stage4-$dt.log" 2>&1
  echo "stage 4 $dt: rc $? $(tail -1 "$out/random-stage4-$dt.log")"
done
DCNV4_TUNING="dcnv4_forward.stage=4" timeout 60 /tmp/build/tests/test_nonfinite \
  >"$out/nonfinite-stage4.log" 2>&1; echo "stage 4 nonfinite: rc $?"
for tuning in "" "dcnv4_forward.stage=4"; do
  DCNV4_TUNING="$tuning" timeout 60 /tmp/build/bench/dcnv4-bench --ops core --forward-only \
    --dtype float16 --shape 64x56x56x128 --group-channels 16 --reps 30 --no-plot \
    --out "$out/stage-${tuning:-default}" 2>&1 | grep -E "^forward" | sed "s/^/${tuning:-default}: /"
done
t0=$(date +%s)
bash tools/device/startup.sh >"$out/startup.txt" 2>&1; cat "$out/startup.txt" | head -4
echo "startup: $(( $(date +%s) - t0 )) s"
