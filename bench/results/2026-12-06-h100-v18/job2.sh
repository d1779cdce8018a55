#!/usr/bin/env bash
# Job 2: predicated corner loads for 16-bit storage (the tree: the corner
# loads with NVIDIA's 256-byte L2 fetch as one predicated asm load each,
# zeros outside the image, instead of a branch around each corner) against
# the commit before (variant base), and with two pieces too (variant pred2;
# the tree then had a switch for it, now pred2.patch). Variants through
# DCNV4_KERNEL_DIR, from the committed tree:
#   v=.device/variants; mkdir -p $v/base $v/pred2
#   git archive 8edd50d cl | tar -x -C $v/base --strip-components=1
#   cp cl/* $v/pred2/ && patch -p2 -d $v/pred2 <bench/results/2026-12-06-h100-v18/pred2.patch
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
source .device/opencl-nvidia.sh
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
rm -rf /tmp/dcnv4-cache
v=$PWD/.device/variants
t0=$(date +%s)
(cd /tmp/build && timeout 120 ctest -R "dcnv4_random$|dcnv4_random_pieces|golden_dcnv4$|nonfinite" \
   -E memcheck -j4 --output-on-failure) >"$out/ctest-forward.log" 2>&1
grep -E "tests passed|tests failed|Failed|\*\*\*" "$out/ctest-forward.log" | tail -8
{
  for dt in float16 bfloat16; do
    echo "tree $dt: $(timeout 60 /tmp/build/tests/test_dcnv4_random --count 30 --dtype $dt 2>&1 | tail -1)"
    echo "pred2 $dt: $(DCNV4_KERNEL_DIR=$v/pred2 timeout 60 /tmp/build/tests/test_dcnv4_random --count 30 --dtype $dt 2>&1 | tail -1)"
    echo "pred2 pieces=2 $dt: $(DCNV4_KERNEL_DIR=$v/pred2 DCNV4_TUNING='dcnv4_forward.pieces=2' timeout 60 /tmp/build/tests/test_dcnv4_random --count 30 --dtype $dt 2>&1 | tail -1)"
  done
  echo "pred2 nonfinite: $(DCNV4_KERNEL_DIR=$v/pred2 DCNV4_LOG=info timeout 90 /tmp/build/tests/test_nonfinite 2>"$out/pred2-nonfinite.log" | tail -1)"
  echo "log lines about failed builds: $(grep -c -i 'fail\|error' "$out/pred2-nonfinite.log")"
} 2>&1 | tee "$out/checks.txt"
echo "tests: $(( $(date +%s) - t0 )) s"
{
  S="--ops core --forward-only --reps 20 --dtype float16"
  echo "#### float16 round 1 (base, tree, pred2, pred2 pieces=2)"
  DCNV4_KERNEL_DIR=$v/base timeout 60 bash tools/device/sweep.sh "$S" ""
  timeout 60 bash tools/device/sweep.sh "$S" ""
  DCNV4_KERNEL_DIR=$v/pred2 timeout 100 bash tools/device/sweep.sh "$S" "" "dcnv4_forward.pieces=2"
  echo "#### float16 round 2 (base, tree, pred2)"
  DCNV4_KERNEL_DIR=$v/base timeout 60 bash tools/device/sweep.sh "$S" ""
  timeout 60 bash tools/device/sweep.sh "$S" ""
  DCNV4_KERNEL_DIR=$v/pred2 timeout 60 bash tools/device/sweep.sh "$S" ""
  S="--ops core --forward-only --reps 20 --dtype bfloat16 --shape 64x56x56x128"
  echo "#### bfloat16 headline (base, tree, pred2)"
  DCNV4_KERNEL_DIR=$v/base timeout 60 bash tools/device/sweep.sh "$S" ""
  timeout 60 bash tools/device/sweep.sh "$S" ""
  DCNV4_KERNEL_DIR=$v/pred2 timeout 60 bash tools/device/sweep.sh "$S" ""
} 2>&1 | tee "$out/sweep-summary.txt" | grep -E -c "^forward"
tar czf "$out/cache.tgz" -C /tmp dcnv4-cache
