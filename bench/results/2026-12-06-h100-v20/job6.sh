#!/usr/bin/env bash
# Job 6 (same warm machine): the committed tree. Stage 4 now builds without
# a register cap below 128, so `dcnv4_forward.stage=4` alone runs as job 5's
# regs=0; the default beside it; the DCNv4 ctests on the GPU.
set -u
out=${OUT:-/tmp/dcnv4-out}
source .device/opencl-nvidia.sh
cmake --build /tmp/build -j16 >/dev/null 2>&1 || echo "build failed"
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
for tuning in "" "dcnv4_forward.stage=4"; do
  DCNV4_TUNING="$tuning" timeout 60 /tmp/build/bench/dcnv4-bench --ops core --forward-only \
    --dtype float16 --shape 64x56x56x128 --group-channels 16 --reps 30 --no-plot \
    --out /tmp/stage-bench 2>&1 | grep -E "^forward" | sed "s/^/${tuning:-default}: /"
done
(cd /tmp/build && timeout 200 ctest -R "dcnv4_random|golden_dcnv4|nonfinite|tensor_cores" \
   -E "memcheck|_full$" -j4 --output-on-failure) >"$out/ctest-dcnv4.log" 2>&1
grep -E "tests passed|tests failed|Failed|\*\*\*" "$out/ctest-dcnv4.log" | tail -8
