#!/usr/bin/env bash
# One GPU-machine job: build, run the tests, run the benchmark; logs under
# $OUT. Run from the project root on the device machine, with .device/
# carried (bash ../shared/device/prepare.sh, plus cJSON's packages and a copy
# of shared/golden in .device/golden: see tools/device/prepare.sh).
#
#   bash tools/device/gpu_job.sh [--tests LABEL_REGEX|all|none] [--bench "ARGS"]
set -uo pipefail
tests=all
bench_args=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tests) tests=$2; shift 2 ;;
    --bench) bench_args=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
out=${OUT:-/tmp/dcnv4-out}
mkdir -p "$out"
source .device/opencl-nvidia.sh
{
  date -u +%Y-%m-%dT%H:%M:%SZ
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.total --format=csv
  clinfo -l
} 2>&1 | tee "$out/device.txt"

t0=$(date +%s)
cmake -S . -B /tmp/build -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH=/tmp/dcnv4-root/usr \
  -DDCNV4_WERROR=OFF -DDCNV4_GOLDEN_DIR="$PWD/.device/golden" \
  >"$out/build.log" 2>&1 &&
  cmake --build /tmp/build -j16 >>"$out/build.log" 2>&1 ||
  { tail -40 "$out/build.log"; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s, $(grep -c 'warning:' "$out/build.log") warning(s)"
grep -A3 'warning:' "$out/build.log" | head -20

export DCNV4_CACHE_DIR=/tmp/dcnv4-cache
status=0
if [ "$tests" != none ]; then
  t0=$(date +%s)
  label=()
  [ "$tests" != all ] && label=(-L "$tests")
  # install_package needs pkg-config, which the GPU image lacks.
  (cd /tmp/build && ctest "${label[@]}" -E install_package -j4 \
     --output-on-failure --timeout 900) >"$out/ctest.log" 2>&1 || status=1
  grep -E "tests passed|tests failed|Failed|\*\*\*|Total Test" "$out/ctest.log" | tail -25
  echo "tests: $(( $(date +%s) - t0 )) s"
fi
if [ -n "$bench_args" ]; then
  # shellcheck disable=SC2086
  /tmp/build/bench/dcnv4-bench --no-plot --out "$out" $bench_args 2>&1 |
    tee "$out/bench.log" || status=1
fi
exit $status
