#!/usr/bin/env bash
# Job 3: the final tree (fold with the recomputing pass for non-finite sums,
# 16-bit corner hint for one piece): the forward's tests on the GPU, the 40
# forward rows against e0dc407's kernels (.device/variants/base), then the
# headline shape's forward+backward and layer forward.
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
source .device/opencl-nvidia.sh
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
(cd /tmp/build && timeout 120 ctest -R "dcnv4_random$|dcnv4_random_pieces|golden_dcnv4$|nonfinite" \
   -j4 --output-on-failure) >"$out/ctest-forward.log" 2>&1
grep -E "tests passed|tests failed|Failed|\*\*\*" "$out/ctest-forward.log" | tail -8
v=$PWD/.device/variants
{
  for dt in float32 float16; do
    S="--ops core --forward-only --reps 20 --dtype $dt"
    echo "#### $dt (base, tree)"
    DCNV4_KERNEL_DIR=$v/base timeout 60 bash tools/device/sweep.sh "$S" ""
    timeout 60 bash tools/device/sweep.sh "$S" ""
  done
} 2>&1 | tee "$out/sweep-summary.txt" | grep -c forward
timeout 120 /tmp/build/bench/dcnv4-bench --ops core,layer --shape 64x56x56x128 --group-channels 16 \
  --reps 30 --no-plot --out "$out/headline" >"$out/headline.log" 2>&1
grep -E "^(forward|backward|forward\+backward|layer)" "$out/headline.log"
