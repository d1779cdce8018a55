#!/usr/bin/env bash
# Job 6 (review): the tree after the review's refactor (CORNER_INDEX_U32,
# the backward's last softmax copies through point_weight), and a mutant of
# the predicated corner path (two corners' bilinear weights swapped,
# variant `mutant`: cl/ with that swap in add_point's folded branch) that
# the GPU tests must reject.
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
source .device/opencl-nvidia.sh
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
v=$PWD/.device/variants
for dt in float16 bfloat16; do
  echo "tree $dt: $(timeout 60 /tmp/build/tests/test_dcnv4_random --count 10 --dtype $dt 2>&1 | tail -1)"
  echo "mutant $dt: $(DCNV4_KERNEL_DIR=$v/mutant timeout 60 /tmp/build/tests/test_dcnv4_random --count 10 --dtype $dt 2>&1 | tail -1)"
done
(cd /tmp/build && timeout 150 ctest -R "dcnv4_random$|golden_dcnv4$|nonfinite|determinism" \
   -E memcheck -j4 --output-on-failure) >"$out/ctest-dcnv4.log" 2>&1
grep -E "tests passed|tests failed|Failed" "$out/ctest-dcnv4.log" | tail -6
timeout 60 /tmp/build/bench/dcnv4-bench --ops core --forward-only --dtype float16 \
  --shape 64x56x56x128 --reps 20 --no-plot --out /tmp/h 2>&1 | grep -E "^forward"
