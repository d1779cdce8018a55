# How this run's comparisons were made (the session's own job scripts were lost with its
# checkout; this does the same). From the project root on the GPU machine, with .device
# carried after `bash tools/device/prepare.sh` here, and the base kernels extracted first:
#   mkdir -p .device/variants/base && git archive 83a3db7 cl | tar -x -C .device/variants/base --strip-components=1
# The base kernels ignore the new -D options, so one host build times both trees.
set -u
bash tools/device/gpu_job.sh --tests quick --bench none
H="--ops core --forward-only --reps 30 --shape 64x56x56x128 --shape 64x14x14x512 --shape 1x200x320x128"
for round in 1 2; do
  echo "== base, round $round"
  DCNV4_KERNEL_DIR=$PWD/.device/variants/base timeout 150 bash tools/device/sweep.sh "$H" ""
  echo "== fixed geometry, round $round"
  timeout 150 bash tools/device/sweep.sh "$H" ""
done
# Backward (H100 run): the same with "--ops core --reps 20 --shape 64x56x56x128 ...",
# which times forward, backward and forward+backward.
# Full forward table with the new tree:
#   /tmp/build/bench/dcnv4-bench --ops core --forward-only --no-plot --out $OUT/full-new
