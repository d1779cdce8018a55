#!/usr/bin/env bash
# Job 2 (final tree, H100): the README's main job on the GPU, every row of
# the benchmark (core forward / backward / forward+backward, the DCNv4 layer,
# FlashDeformAttn), each checked against the reference first.
set -u
out=${OUT:-/tmp/dcnv4-out}
bash tools/device/gpu_job.sh --tests none --bench "--reps 30" --bench-timeout 500
