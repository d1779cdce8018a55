#!/usr/bin/env bash
# Job 5 (prepared, not yet run): the weight fold with a rolled
# documented-order pass for non-finite sums (fold-rolled.patch). Kernels
# through DCNV4_KERNEL_DIR: .device/variants/base (the committed cl/),
# fold (fold.patch applied) and rolled (fold-rolled.patch applied), e.g.
#   for v in base fold rolled; do rm -rf .device/variants/$v; mkdir -p .device/variants/$v; \
#     git archive HEAD cl | tar -x -C .device/variants/$v --strip-components=1; done
#   (cd .device/variants/fold && patch -p2 < ../../../bench/results/2026-12-06-h100-v16/fold.patch)
#   (cd .device/variants/rolled && patch -p2 < ../../../bench/results/2026-12-06-h100-v16/fold-rolled.patch)
# The forward's tests with the rolled kernels, then the 40 forward rows of
# each variant, two rounds.
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
source .device/opencl-nvidia.sh
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
v=$PWD/.device/variants
(cd /tmp/build && DCNV4_KERNEL_DIR=$v/rolled timeout 120 ctest \
   -R "dcnv4_random$|dcnv4_random_pieces|golden_dcnv4$|nonfinite" -j4 --output-on-failure) \
  >"$out/ctest-forward.log" 2>&1
grep -E "tests passed|tests failed|Failed|\*\*\*" "$out/ctest-forward.log" | tail -8
{
  for round in 1 2; do
    for dt in float32 float16; do
      S="--ops core --forward-only --reps 20 --dtype $dt"
      echo "#### $dt round $round (base, fold, rolled)"
      for k in base fold rolled; do
        DCNV4_KERNEL_DIR=$v/$k timeout 60 bash tools/device/sweep.sh "$S" ""
      done
    done
  done
} 2>&1 | tee "$out/sweep-summary.txt" | grep -c forward
