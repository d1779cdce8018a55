#!/usr/bin/env bash
# Job 4: the tree as committed (16-bit corner hint for one piece; no fold):
# the forward's tests on the GPU, then all 40 forward rows with the defaults.
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
source .device/opencl-nvidia.sh
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
(cd /tmp/build && timeout 100 ctest -R "dcnv4_random$|dcnv4_random_pieces|golden_dcnv4$|nonfinite" \
   -j4 --output-on-failure) >"$out/ctest-forward.log" 2>&1
grep -E "tests passed|tests failed|Failed|\*\*\*" "$out/ctest-forward.log" | tail -8
timeout 120 /tmp/build/bench/dcnv4-bench --ops core --forward-only --reps 20 --no-plot \
  --out "$out" >"$out/bench.log" 2>&1
tail -3 "$out/bench.log"
