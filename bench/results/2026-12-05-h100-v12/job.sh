# The job of this run, as run on 5f2c464 (stage 4 and .device/variants/geo1 existed
# then; neither is in the tree now). A record, not a script to rerun as is.
set -u
bash tools/device/gpu_job.sh --tests none --bench none
H="--ops core --forward-only --reps 30 --shape 64x56x56x128 --shape 64x14x14x512 --shape 1x200x320x128"
echo "== start $(date -u +%T)"
timeout 200 bash tools/device/sweep.sh "$H" "" "dcnv4_forward.stage=4" "" "dcnv4_forward.stage=4" "dcnv4_forward.stage=4;dcnv4_forward.regs=48"
echo "== geo1 $(date -u +%T)"
DCNV4_KERNEL_DIR=$PWD/.device/variants/geo1 timeout 40 bash tools/device/sweep.sh "--ops core --forward-only --reps 30 --shape 64x56x56x128" "dcnv4_forward.stage=4"
echo "== end $(date -u +%T)"
