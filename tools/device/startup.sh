#!/usr/bin/env bash
# Cold and warm start on the GPU machine: one dcnv4-run process per golden
# case (context creation, .npy input, forward and backward, output) in three
# cache states, wall time of the whole process, and the per-program build or
# load times that DCNV4_LOG=info reports.
#   cold        : empty DCNV4_CACHE_DIR and CUDA_CACHE_PATH (NVIDIA's compute
#                 cache): every program from OpenCL C, its PTX to SASS
#   dcnv4-cache : DCNV4_CACHE_DIR as the cold run left it, CUDA_CACHE_PATH
#                 emptied again: the driver still compiles the cached PTX
#   both-caches : both kept (every run after the first)
# Run after gpu_job.sh has built into $DCNV4_BUILD_DIR (default /tmp/build);
# prints the table, keeps no files.
#   bash tools/device/startup.sh [CASE...]   (default: basic fda_basic layer_basic)
set -uo pipefail
build=${DCNV4_BUILD_DIR:-/tmp/build}
golden=${DCNV4_GOLDEN:-$PWD/.device/golden}
source .device/opencl-nvidia.sh
work=$(mktemp -d)
export DCNV4_CACHE_DIR=$work/dcnv4-cache CUDA_CACHE_PATH=$work/cuda-cache
export DCNV4_LOG=info
cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=(basic fda_basic layer_basic)
now_ms() { date +%s%3N; }
status=0
for c in "${cases[@]}"; do
  rm -rf "$DCNV4_CACHE_DIR" "$CUDA_CACHE_PATH"
  line="$(printf '%-12s' "$c")"
  for state in cold dcnv4-cache both-caches; do
    [ "$state" = dcnv4-cache ] && rm -rf "$CUDA_CACHE_PATH"
    log=$work/startup-$c-$state.log
    t0=$(now_ms)
    "$build"/tools/dcnv4-run "$golden/$c" "$work/out-$c" >"$log" 2>&1 || {
      status=1
      echo "$c ($state) failed: $(tail -2 "$log")"
    }
    t1=$(now_ms)
    line+="  $state $((t1 - t0)) ms"
  done
  echo "$line"
done
echo
echo "Per program (DCNV4_LOG lines, cold / dcnv4-cache / both-caches):"
for c in "${cases[@]}"; do
  for state in cold dcnv4-cache both-caches; do
    grep -h -E "program .* (built from source|loaded from cache)" \
      "$work/startup-$c-$state.log" |
      sed -E "s/ \[[^]]*\]//; s/^\[dcnv4\] //; s/^/  $c $state: /"
  done
done
rm -rf "$work"
exit $status
