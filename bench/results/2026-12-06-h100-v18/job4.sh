#!/usr/bin/env bash
# Job 4: the tree as committed (predicated corner loads for one piece of
# 16-bit storage; the backward's point weights through point_weight): the
# DCNv4 tests on the GPU, all 40 forward rows with the defaults, then
# 64x56x56x128 G8xD16 forward, backward, forward+backward and the layer's
# forward, and the bf16 forward of that shape.
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
source .device/opencl-nvidia.sh
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
t0=$(date +%s)
(cd /tmp/build && timeout 200 ctest \
   -R "dcnv4_random$|dcnv4_random_rows|dcnv4_random_pieces|dcnv4_random_gpu_paths|golden_dcnv4|nonfinite|determinism|dcnv4_layer$" \
   -E memcheck -j4 --output-on-failure) >"$out/ctest-dcnv4.log" 2>&1
grep -E "tests passed|tests failed|Failed|\*\*\*" "$out/ctest-dcnv4.log" | tail -8
echo "tests: $(( $(date +%s) - t0 )) s"
t0=$(date +%s)
timeout 150 /tmp/build/bench/dcnv4-bench --ops core --forward-only --reps 20 --no-plot \
  --out "$out" >"$out/bench.log" 2>&1
tail -3 "$out/bench.log"
echo "bench: $(( $(date +%s) - t0 )) s"
timeout 150 /tmp/build/bench/dcnv4-bench --ops core,layer --shape 64x56x56x128 --group-channels 16 \
  --reps 30 --no-plot --out "$out/headline" >"$out/headline.log" 2>&1
grep -E "^(forward|backward|forward\+backward|layer)" "$out/headline.log"
timeout 60 /tmp/build/bench/dcnv4-bench --ops core --forward-only --dtype bfloat16 \
  --shape 64x56x56x128 --reps 30 --no-plot --out "$out/bf16" >"$out/bf16.log" 2>&1
grep -E "^forward" "$out/bf16.log"
