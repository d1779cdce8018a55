set -u
bash tools/device/gpu_job.sh --tests none --bench none
H="--ops core --forward-only --reps 30 --shape 64x56x56x128 --shape 64x14x14x512 --shape 1x200x320x128"
echo "== start $(date -u +%T)"
timeout 200 bash tools/device/sweep.sh "$H" "" "dcnv4_forward.stage=4" "" "dcnv4_forward.stage=4" "dcnv4_forward.stage=4;dcnv4_forward.regs=48"
echo "== geo1 $(date -u +%T)"
DCNV4_KERNEL_DIR=$PWD/.device/variants/geo1 timeout 40 bash tools/device/sweep.sh "--ops core --forward-only --reps 30 --shape 64x56x56x128" "dcnv4_forward.stage=4"
echo "== end $(date -u +%T)"
