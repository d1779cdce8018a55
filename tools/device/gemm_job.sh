#!/usr/bin/env bash
# The 16-bit GEMM on the GPU machine (issue 32): build, the GEMM tests on the
# tensor-core path, dcnv4-bench's GEMM rows, the PyTorch anchor
# (torch.matmul) in the same job, and ours against theirs. Logs under $OUT.
#
# Here, first: bash tools/device/prepare.sh (.device/: CLBlast, cJSON,
# golden); then the device tool's run with carry [".device"] and
#   bash tools/device/gemm_job.sh [--skip LIST] [--bench "ARGS"]
#                                 [--sweep "TUNING;..." ...]
#
#   --skip LIST   phases to leave out, of build,tests,bench,anchor (a second
#                 call on the same warm machine reuses /tmp/build)
#   --bench ARGS  more dcnv4-bench arguments (e.g. "--dtype float16")
#   --sweep T     also time the fp16 rows with DCNV4_TUNING=T (repeatable;
#                 e.g. "linear_mma.tilem=128;linear_mma.tilen=256;
#                 linear_mma.local=256"), into $OUT/sweep-N/
#
# What to look at: tests.log, every line "tensor cores: yes" and "all checks
# passed"; summary.txt, the fp16 geometric mean of ours/torch throughput
# (issue 32: >= 0.6) and each shape's ratio; with --sweep, sweeps.txt,
# each setting's fp16 throughput over the job's own baseline and the best.
set -uo pipefail
skip="" bench_args="" sweeps=()
while [ $# -gt 0 ]; do
  case "$1" in
    --skip) skip=$2; shift 2 ;;
    --bench) bench_args=$2; shift 2 ;;
    --sweep) sweeps+=("$2"); shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
skipped() { [[ ",$skip," == *",$1,"* ]]; }
out=${OUT:-/tmp/dcnv4-out}
build=${DCNV4_BUILD_DIR:-/tmp/build}
mkdir -p "$out"
source .device/opencl-nvidia.sh
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem \
  --format=csv 2>&1 | tee "$out/device.txt"
status=0

if ! skipped build; then
  t0=$(date +%s)
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH=/tmp/dcnv4-root/usr -DDCNV4_WERROR=OFF \
    -DDCNV4_GOLDEN_DIR="$PWD/.device/golden" >"$out/build.log" 2>&1 &&
    cmake --build "$build" -j16 >>"$out/build.log" 2>&1 ||
    { tail -40 "$out/build.log"; exit 1; }
  echo "build: $(($(date +%s) - t0)) s"
fi
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache

if ! skipped tests; then
  t0=$(date +%s)
  {
    # Every dtype x output x epilogue on the built-in tiles, then other
    # tilings (a ring of 3 and of 4, the §37 variants); DCNV4_LOG=info shows
    # a PTX build that fell back to the portable one.
    DCNV4_LOG=info timeout 240 "$build"/tests/test_linear_mma --count 20 --all
    DCNV4_TUNING="linear_mma.tilem=64;linear_mma.tilen=64;linear_mma.tilek=32;linear_mma.local=128;linear_mma.stages=3" \
      timeout 120 "$build"/tests/test_linear_mma --count 8 --all
    DCNV4_TUNING="linear_mma.tilem=128;linear_mma.tilen=128;linear_mma.tilek=16;linear_mma.local=256;linear_mma.stages=4" \
      timeout 120 "$build"/tests/test_linear_mma --count 8 --all
    # The variants of docs/perf-notes.md §37 on the tensor cores: swizzled
    # rows with 3 stages, the staged epilogue and prefetched fragments
    # (48 KiB), then 128x256 tiles in 2 swizzled stages with a raster.
    DCNV4_TUNING="linear_mma.swizzle=1;linear_mma.stages=3;linear_mma.staged=1;linear_mma.prefetch=1" \
      timeout 120 "$build"/tests/test_linear_mma --count 8 --all
    DCNV4_TUNING="linear_mma.tilen=256;linear_mma.swizzle=1;linear_mma.staged=1;linear_mma.raster=8" \
      timeout 120 "$build"/tests/test_linear_mma --count 8 --all
    (cd "$build" && timeout 200 ctest -R '^(linear|fii_ops|tuning_table|tuning_file)$' \
      --output-on-failure)
  } >"$out/tests.log" 2>&1 || status=1
  grep -E "tensor cores|checks|FAIL|tests passed|tests failed|fell|falling" \
    "$out/tests.log" | head -60
  echo "tests: $(($(date +%s) - t0)) s"
fi

if ! skipped bench; then
  # shellcheck disable=SC2086
  timeout 300 "$build"/bench/dcnv4-bench --ops gemm --no-plot \
    --out "$out/bench" $bench_args >"$out/bench.log" 2>&1 || status=1
  cat "$out/bench.log"
  i=0
  for t in "${sweeps[@]}"; do
    i=$((i + 1))
    echo "sweep-$i: $t"
    DCNV4_TUNING="$t" timeout 200 "$build"/bench/dcnv4-bench --ops gemm \
      --dtype float16 --no-plot --out "$out/sweep-$i" >"$out/sweep-$i.log" \
      2>&1 || status=1
    grep '^gemm' "$out/sweep-$i.log"
  done
  # Each sweep's fp16 throughput over this job's own baseline rows.
  if [ "$i" -gt 0 ]; then
    python3 bench/anchor/gemm_anchor.py --sweeps "$out/bench/results.csv" \
      "$out"/sweep-*/results.csv >"$out/sweeps.txt" 2>&1
    grep -E '^(==|float16: geometric|best)' "$out/sweeps.txt"
  fi
fi

if ! skipped anchor; then
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
  timeout 240 python3 bench/anchor/gemm_anchor.py --out "$out/gemm_anchor.csv" \
    >"$out/anchor.log" 2>&1 || status=1
  tail -3 "$out/anchor.log"
  if [ -f "$out/bench/results.csv" ] && [ -f "$out/gemm_anchor.csv" ]; then
    python3 bench/anchor/gemm_anchor.py --summary "$out/bench/results.csv" \
      "$out/gemm_anchor.csv" | tee "$out/summary.txt"
    python3 bench/anchor/join.py "$out/bench/results.csv" \
      "$out/gemm_anchor.csv" --ops gemm --csv "$out/joined.csv" >/dev/null
  fi
fi
exit $status
