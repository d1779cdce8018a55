#!/usr/bin/env bash
# Job 2: the fold with its documented-order pass out of line ("called": the
# rolled pass of v16's fold-rolled.patch moved into a noinline function that
# writes the work-item's output, called-over-rolled.patch here), against the
# tree (as job 1's), rolled and merged again (round 2). Variants as in
# job1.sh, plus
#   cp -r .device/variants/rolled .device/variants/called
#   (cd .device/variants/called && patch -p2 < ../../../bench/results/2026-12-06-h100-v17/called-over-rolled.patch)
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
source .device/opencl-nvidia.sh
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
v=$PWD/.device/variants
t0=$(date +%s)
{
  for dt in float32 float16 bfloat16; do
    echo "called $dt: $(DCNV4_KERNEL_DIR=$v/called timeout 60 \
      /tmp/build/tests/test_dcnv4_random --count 20 --dtype $dt 2>&1 | tail -1)"
  done
  echo "called nonfinite: $(DCNV4_KERNEL_DIR=$v/called DCNV4_LOG=info timeout 90 \
    /tmp/build/tests/test_nonfinite 2>"$out/called-nonfinite.log" | tail -1)"
  echo "log lines about failed builds: $(grep -c -i 'fail\|error' "$out/called-nonfinite.log")"
  echo "called pieces=2: $(DCNV4_KERNEL_DIR=$v/called DCNV4_TUNING='dcnv4_forward.vec=2;dcnv4_forward.pieces=2' \
    timeout 60 /tmp/build/tests/test_dcnv4_random --count 20 2>&1 | tail -1)"
} 2>&1 | tee "$out/checks.txt"
echo "tests: $(( $(date +%s) - t0 )) s"
{
  for dt in float32 float16; do
    S="--ops core --forward-only --reps 20 --dtype $dt"
    echo "#### $dt round 2 (tree, rolled, called, merged)"
    t1=$(date +%s)
    timeout 60 bash tools/device/sweep.sh "$S" ""
    for k in rolled called merged; do
      DCNV4_KERNEL_DIR=$v/$k timeout 60 bash tools/device/sweep.sh "$S" ""
    done
    echo "sweeps: $(( $(date +%s) - t1 )) s"
  done
} 2>&1 | tee "$out/sweep-summary.txt" | grep -E -c "^forward"
grep "sweeps:" "$out/sweep-summary.txt"
