#!/usr/bin/env bash
# Times the CUDA replica of the DCNv4 forward kernel (forward_replica.cu) and
# reads its hardware counters with Nsight Compute, which cannot profile the
# OpenCL kernel itself. Run from the repository root on the GPU machine:
#
#   OUT=/tmp/forward-counters bash tools/device/forward_counters.sh
#
# Writes under $OUT (default /tmp/forward-counters): timings.txt (every
# variant at 64x56x56x128 G 8, work-groups "32 2 4" and "8 8 4"), and for
# `replica` at both shapes ncu's details page (<name>-details.txt), its raw
# metrics as CSV (<name>-raw.csv) and ncu's log (<name>-ncu.log). The
# .ncu-rep reports are deleted after export to keep $OUT small.
set -uo pipefail
out=${OUT:-/tmp/forward-counters}
mkdir -p "$out"
nvcc=/usr/local/cuda/bin/nvcc
ncu=/usr/local/cuda/bin/ncu
bin=/tmp/forward_replica
shape="64 56 56 8" # N H W G
# "32 2 4": all 8 groups of 2x4 pixels (the old default);
# "8 8 4": 2 groups of 8x4 pixels (the new default).
groups=("32 2 4" "8 8 4")
status=0

if ! "$nvcc" -O2 -arch=sm_90 -Xptxas -v -o "$bin" tools/device/forward_replica.cu -lcuda \
  >"$out/build.log" 2>&1; then
  cat "$out/build.log"
  exit 1
fi

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader \
  2>&1 | tee "$out/timings.txt"
for variant in replica shuffle texture_offsets global_offsets; do
  for lg in "${groups[@]}"; do
    # With pipefail a failing run (e.g. a wrong result) fails the pipeline.
    # shellcheck disable=SC2086
    "$bin" "$variant" $shape $lg 100 2>&1 | tee -a "$out/timings.txt" || status=1
  done
done

for lg in "${groups[@]}"; do
  name="replica-${lg// /x}"
  rm -f "$out/$name.ncu-rep"
  # Skips the 3 warm-up launches and profiles the first timed one.
  # shellcheck disable=SC2086
  if ! "$ncu" --clock-control none --set full --launch-skip 3 --launch-count 1 \
    -o "$out/$name" "$bin" replica $shape $lg 5 >"$out/$name-ncu.log" 2>&1; then
    echo "ncu failed for $name:" >&2
    tail -20 "$out/$name-ncu.log" >&2
    status=1
    continue
  fi
  "$ncu" --import "$out/$name.ncu-rep" --page details >"$out/$name-details.txt" || status=1
  "$ncu" --import "$out/$name.ncu-rep" --page raw --csv >"$out/$name-raw.csv" || status=1
  rm -f "$out/$name.ncu-rep"
  echo "$name: $out/$name-details.txt, $out/$name-raw.csv"
done
exit "$status"
