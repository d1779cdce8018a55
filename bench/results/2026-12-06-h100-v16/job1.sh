#!/usr/bin/env bash
# Job 1: 256-byte L2 fetch hints on the 16-bit forward's corner loads (the
# working tree; .device/variants/base holds e0dc407's kernels, which ignore
# the define for 16-bit storage): the forward's tests on the GPU, which
# programs took the hint, the 20 fp16 rows and 3 bf16 shapes against the
# base, two rounds; then the small rows under narrower vectors and register
# caps (more work-items per pixel for the latency-bound rows).
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
source .device/opencl-nvidia.sh
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
(cd /tmp/build && timeout 100 ctest -R "dcnv4_random$|dcnv4_random_pieces|golden|nonfinite|dcnv4_layer$" \
   -j4 --output-on-failure) >"$out/ctest-forward.log" 2>&1
grep -E "tests passed|tests failed|Failed|\*\*\*" "$out/ctest-forward.log" | tail -8
for v in 2 4; do
  for dt in float16 bfloat16; do
    echo "vec=$v $dt: $(DCNV4_TUNING="dcnv4_forward.vec=$v" timeout 60 \
      /tmp/build/tests/test_dcnv4_random --count 20 --dtype $dt 2>&1 | tail -1)"
  done
done
echo "forward programs with the hint: $(grep -l -a 'L2::256B' /tmp/dcnv4-cache/*.clbin | xargs grep -a -l '.entry dcnv4_forward(' | wc -l)"
for f in $(grep -l -a 'L2::256B' /tmp/dcnv4-cache/*.clbin | xargs grep -a -l '.entry dcnv4_forward('); do
  grep -a -m1 -o 'DTYPE=[0-9] -DVEC=[0-9]' "$f"
done | sort | uniq -c
b=$PWD/.device/variants/base
S16="--ops core --forward-only --reps 20 --dtype float16"
SB="--ops core --forward-only --reps 30 --dtype bfloat16 --shape 64x56x56x128 --shape 64x14x14x512 --shape 1x200x320x128"
{
  for round in 1 2; do
    echo "#### fp16 round $round (base, hint)"
    DCNV4_KERNEL_DIR=$b timeout 60 bash tools/device/sweep.sh "$S16" ""
    timeout 60 bash tools/device/sweep.sh "$S16" ""
  done
  echo "#### bf16 (base, hint)"
  DCNV4_KERNEL_DIR=$b timeout 40 bash tools/device/sweep.sh "$SB" ""
  timeout 40 bash tools/device/sweep.sh "$SB" ""
  f=dcnv4_forward
  S="--ops core --forward-only --reps 40 --shape 1x25x40x1024 --shape 1x50x80x512 --shape 64x7x7x1024 --shape 1x64x64x768 --shape 1x100x160x256"
  echo "#### small rows fp32"
  timeout 150 bash tools/device/sweep.sh "$S --dtype float32" "" "$f.vec=2" "$f.vec=2;$f.regs=0" \
    "$f.vec=1" "$f.vec=1;$f.regs=0" "$f.vec=2;$f.regs=32" ""
  echo "#### small rows fp16"
  timeout 150 bash tools/device/sweep.sh "$S --dtype float16" "" "$f.vec=4" "$f.vec=4;$f.regs=0" \
    "$f.vec=4;$f.regs=32" "$f.vec=4;$f.pieces=1" "$f.vec=2;$f.regs=0" ""
} 2>&1 | tee "$out/sweep-summary.txt"
