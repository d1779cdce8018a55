#!/usr/bin/env bash
# Job 8, the final tree (256-byte L2 fetch hints on fp32's forward loads,
# NVIDIA compute capability >= 8): the forward's tests on the GPU, the 3
# shapes against the kernels of 8f74cc6 (.device/variants/base, which ignore
# the define), then the 20 fp32 forward rows with the defaults.
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
source .device/opencl-nvidia.sh
(cd /tmp/build && DCNV4_CACHE_DIR=/tmp/dcnv4-cache timeout 100 ctest -R "dcnv4_random$|dcnv4_random_pieces|golden|nonfinite|dcnv4_layer$" \
   -j4 --output-on-failure) >"$out/ctest-forward.log" 2>&1
grep -E "tests passed|tests failed|Failed|\*\*\*" "$out/ctest-forward.log" | tail -8
DCNV4_CACHE_DIR=/tmp/dcnv4-cache DCNV4_TUNING="dcnv4_forward.vec=8" timeout 60 \
  /tmp/build/tests/test_dcnv4_random --count 20 --dtype float32 2>&1 | tail -1
S="--ops core --forward-only --reps 30 --shape 64x56x56x128 --shape 64x14x14x512 --shape 1x200x320x128 --dtype float32"
{
  DCNV4_KERNEL_DIR=$PWD/.device/variants/base timeout 40 bash tools/device/sweep.sh "$S" ""
  timeout 40 bash tools/device/sweep.sh "$S" ""
} 2>&1 | tee "$out/sweep-summary.txt"
DCNV4_CACHE_DIR=/tmp/dcnv4-cache timeout 120 /tmp/build/bench/dcnv4-bench --ops core --forward-only \
  --reps 20 --dtype float32 --no-plot --out "$out" >"$out/bench.log" 2>&1
tail -4 "$out/bench.log"
