#!/usr/bin/env bash
# Job 2: the point's weight folded into its bilinear weights (one FMA per
# channel and corner instead of one more per point), with and without the
# 16-bit corner hint (for one piece only, as job 1 showed two pieces losing):
# the forward's tests on the GPU, then all 40 forward rows, kernels of
# e0dc407 (base), fold (the fold alone) and the working tree (fold + 16-bit
# hint), two rounds.
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
source .device/opencl-nvidia.sh
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
(cd /tmp/build && timeout 100 ctest -R "dcnv4_random$|dcnv4_random_pieces|golden|nonfinite" \
   -j4 --output-on-failure) >"$out/ctest-forward.log" 2>&1
grep -E "tests passed|tests failed|Failed|\*\*\*" "$out/ctest-forward.log" | tail -8
{
  for v in 2 4 8; do
    for dt in float32 float16 bfloat16; do
      echo "vec=$v $dt: $(DCNV4_TUNING="dcnv4_forward.vec=$v" timeout 60 \
        /tmp/build/tests/test_dcnv4_random --count 20 --dtype $dt 2>&1 | tail -1)"
    done
  done
  echo "forward programs with the hint, by dtype and vec:"
  for f in $(grep -l -a 'L2::256B' /tmp/dcnv4-cache/*.clbin | xargs grep -a -l '.entry dcnv4_forward('); do
    grep -a -m1 -o 'DTYPE=[0-9] -DVEC=[0-9]' "$f"
  done | sort | uniq -c
} 2>&1 | tee "$out/checks.txt"
v=$PWD/.device/variants
{
  for round in 1 2; do
    for dt in float32 float16; do
      S="--ops core --forward-only --reps 20 --dtype $dt"
      echo "#### $dt round $round (base, fold, tree)"
      DCNV4_KERNEL_DIR=$v/base timeout 60 bash tools/device/sweep.sh "$S" ""
      DCNV4_KERNEL_DIR=$v/fold timeout 60 bash tools/device/sweep.sh "$S" ""
      timeout 60 bash tools/device/sweep.sh "$S" ""
    done
  done
} 2>&1 | tee "$out/sweep-summary.txt" | grep -c forward
