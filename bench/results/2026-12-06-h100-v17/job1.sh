#!/usr/bin/env bash
# Job 1: the forward's points in parts (dcnv4_forward.parts, POINT_PARTS;
# the tree was 8b4bd9e with parts.patch applied, `git apply
# bench/results/2026-12-06-h100-v17/parts.patch`), and v16's prepared kernels. Variants through DCNV4_KERNEL_DIR, made from
# the commit before the parts (8b4bd9e; with parts=1 the tree's forward
# gives the same PTX as that commit's in clang's build, so it is the base):
#   for v in rolled merged; do rm -rf .device/variants/$v; mkdir -p .device/variants/$v; \
#     git archive 8b4bd9e cl | tar -x -C .device/variants/$v --strip-components=1; done
#   (cd .device/variants/rolled && patch -p2 < ../../../bench/results/2026-12-06-h100-v16/fold-rolled.patch)
#   (cd .device/variants/merged && patch -p2 < ../../../bench/results/2026-12-06-h100-v16/fetch-merged.patch)
# The forward's tests (tree; parts=2 and 3 with NVIDIA's defaults otherwise;
# the rolled kernels), then the 40 forward rows: tree (the base), parts=2,
# parts=3, rolled, merged.
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
source .device/opencl-nvidia.sh
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
v=$PWD/.device/variants
t0=$(date +%s)
(cd /tmp/build && timeout 100 ctest -R "dcnv4_random$|dcnv4_random_pieces|dcnv4_random_parts|golden_dcnv4$|nonfinite" \
   -j4 --output-on-failure) >"$out/ctest-forward.log" 2>&1
grep -E "tests passed|tests failed|Failed|\*\*\*" "$out/ctest-forward.log" | tail -8
{
  for p in 2 3; do
    for dt in float32 float16 bfloat16; do
      echo "parts=$p $dt: $(DCNV4_TUNING="dcnv4_forward.parts=$p" timeout 60 \
        /tmp/build/tests/test_dcnv4_random --count 20 --dtype $dt 2>&1 | tail -1)"
    done
    echo "parts=$p nonfinite: $(DCNV4_TUNING="dcnv4_forward.parts=$p" timeout 60 \
      /tmp/build/tests/test_nonfinite 2>&1 | tail -1)"
  done
  for t in test_nonfinite "test_dcnv4_random --count 20"; do
    echo "rolled $t: $(DCNV4_KERNEL_DIR=$v/rolled timeout 60 /tmp/build/tests/$t 2>&1 | tail -1)"
  done
  echo "programs with POINT_PARTS: $(grep -l -a 'POINT_PARTS=' /tmp/dcnv4-cache/*.clbin | wc -l)"
} 2>&1 | tee "$out/checks.txt"
echo "tests: $(( $(date +%s) - t0 )) s"
{
  for dt in float32 float16; do
    S="--ops core --forward-only --reps 20 --dtype $dt"
    echo "#### $dt round 1 (tree, parts=2, parts=3, rolled, merged)"
    t1=$(date +%s)
    timeout 150 bash tools/device/sweep.sh "$S" "" "dcnv4_forward.parts=2" "dcnv4_forward.parts=3"
    DCNV4_KERNEL_DIR=$v/rolled timeout 60 bash tools/device/sweep.sh "$S" ""
    DCNV4_KERNEL_DIR=$v/merged timeout 60 bash tools/device/sweep.sh "$S" ""
    echo "sweeps: $(( $(date +%s) - t1 )) s"
  done
} 2>&1 | tee "$out/sweep-summary.txt" | grep -E -c "^forward"
grep "sweeps:" "$out/sweep-summary.txt"
