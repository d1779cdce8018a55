#!/usr/bin/env bash
# Job 3: the tree as committed (the fold with its documented-order pass out
# of line): the forward's and the layer's tests on the GPU, all 40 forward
# rows with the defaults, then 64x56x56x128 G8xD16 forward, backward,
# forward+backward and the layer's forward.
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
source .device/opencl-nvidia.sh
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
t0=$(date +%s)
(cd /tmp/build && timeout 170 ctest \
   -R "dcnv4_random$|dcnv4_random_rows|dcnv4_random_pieces|golden_dcnv4|nonfinite|dcnv4_layer" \
   -E memcheck -j4 --output-on-failure) >"$out/ctest-forward.log" 2>&1
grep -E "tests passed|tests failed|Failed|\*\*\*" "$out/ctest-forward.log" | tail -8
echo "tests: $(( $(date +%s) - t0 )) s"
t0=$(date +%s)
timeout 150 /tmp/build/bench/dcnv4-bench --ops core --forward-only --reps 20 --no-plot \
  --out "$out" >"$out/bench.log" 2>&1
tail -3 "$out/bench.log"
echo "bench: $(( $(date +%s) - t0 )) s"
timeout 150 /tmp/build/bench/dcnv4-bench --ops core,layer --shape 64x56x56x128 --group-channels 16 \
  --reps 30 --no-plot --out "$out/headline" >"$out/headline.log" 2>&1
grep -E "^(forward|backward|forward\+backward|layer)" "$out/headline.log"
