#!/usr/bin/env bash
# Job 4: register caps with the fold (it keeps no separate sample per point,
# so it may need fewer registers): the tree's defaults against other caps,
# all 40 forward rows. The override applies to both group_channels.
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench none
{
  echo "#### float32 (tree, regs=40, regs=56)"
  timeout 100 bash tools/device/sweep.sh "--ops core --forward-only --reps 20 --dtype float32" \
    "" "dcnv4_forward.regs=40" "dcnv4_forward.regs=56"
  echo "#### float16 (tree, regs=32, regs=48)"
  timeout 160 bash tools/device/sweep.sh "--ops core --forward-only --reps 20 --dtype float16" \
    "" "dcnv4_forward.regs=32" "dcnv4_forward.regs=48"
} 2>&1 | tee "$out/sweep-summary.txt" | grep -E -c "^forward"
