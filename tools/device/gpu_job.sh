#!/usr/bin/env bash
# One GPU-machine job: build, quick tests, benchmark, then (if asked) the
# full tests, each phase under its own time limit so one stall cannot eat the
# lease. Logs under $OUT. Run from the project root on the device machine
# with .device/ carried (prepare it here with tools/device/prepare.sh).
#
#   bash tools/device/gpu_job.sh [--tests quick|all|none] [--bench "ARGS"|none]
#                                [--test-timeout S] [--bench-timeout S]
set -uo pipefail
tests=quick
bench_args=""
test_timeout=150
bench_timeout=300
while [ $# -gt 0 ]; do
  case "$1" in
    --tests) tests=$2; shift 2 ;;
    --bench) bench_args=$2; shift 2 ;;
    --test-timeout) test_timeout=$2; shift 2 ;;
    --bench-timeout) bench_timeout=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
out=${OUT:-/tmp/dcnv4-out}
# DCNV4_BUILD_DIR lets two source trees share one machine.
build=${DCNV4_BUILD_DIR:-/tmp/build}
mkdir -p "$out"
source .device/opencl-nvidia.sh
{
  date -u +%Y-%m-%dT%H:%M:%SZ
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.total --format=csv
  clinfo -l
} 2>&1 | tee "$out/device.txt"

t0=$(date +%s)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH=/tmp/dcnv4-root/usr \
  -DDCNV4_WERROR=OFF -DDCNV4_GOLDEN_DIR="$PWD/.device/golden" \
  >"$out/build.log" 2>&1 &&
  cmake --build "$build" -j16 >>"$out/build.log" 2>&1 ||
  { tail -40 "$out/build.log"; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s, $(grep -c 'warning:' "$out/build.log") warning(s)"
grep -A3 'warning:' "$out/build.log" | head -20

export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
status=0
run_tests() { # label-args log
  local log=$1; shift
  local t0=$(date +%s)
  # install_package needs pkg-config, which the GPU image lacks.
  (cd "$build" && timeout $((test_timeout + 30)) ctest "$@" -E install_package \
     -j4 --output-on-failure --timeout "$test_timeout") >"$out/$log" 2>&1 || status=1
  grep -E "tests passed|tests failed|Failed|Timeout|\*\*\*|Not Run" "$out/$log" | tail -25
  echo "$log: $(( $(date +%s) - t0 )) s"
}
[ "$tests" != none ] && run_tests ctest-quick.log -L quick
if [ "$bench_args" != none ]; then
  # shellcheck disable=SC2086
  timeout "$bench_timeout" "$build"/bench/dcnv4-bench --no-plot --out "$out" \
    $bench_args >"$out/bench.log" 2>&1 || status=1
  cat "$out/bench.log"
fi
[ "$tests" = all ] && run_tests ctest-full.log -LE quick
exit $status
