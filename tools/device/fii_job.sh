#!/usr/bin/env bash
# FlashInternImage on the GPU machine (issue 31): the golden fii cases
# through dcnv4-run, dcnv4-bench's fii rows, and the PyTorch anchor
# (upstream's model with upstream's CUDA DCNv4 operator) timed in the same
# job, then ours against theirs. Everything lands under $OUT.
#
# Here, first (from the project's root):
#   bash tools/device/prepare.sh               # .device/: CLBlast, cJSON, golden
#   cp -r /path/to/DCNv4 .device/upstream      # a checkout of OpenGVLab/DCNv4
#                                              # (classification/, DCNv4_op/)
# then the device tool's run with carry [".device"] and the command
#   bash tools/device/fii_job.sh [--quick] [--bench "ARGS"] [--anchor "ARGS"]
#
#   --quick          T only, fewer launches (both sides)
#   --bench ARGS     more dcnv4-bench arguments (e.g. "--dtype float32")
#   --anchor ARGS    more fii_anchor.py arguments (e.g. "--dtypes float32")
#   --upstream DIR   the DCNv4 checkout (default .device/upstream)
#   --skip LIST      phases to leave out, of build,golden,bench,anchor
#                    (a second call on the same warm machine reuses
#                    /tmp/build and the built extension)
#   --overlap        time while the extension still builds (faster, but
#                    the compiler competes with the host side of batch 1)
#
# The whole job may pass a call's 10 minutes: try --quick first, or split it
# over two calls on the same warm machine, `--skip anchor` then
# `--skip build,golden,bench` (the second call's $OUT is new: join the two
# CSVs with bench/anchor/join.py afterwards).
#
# Phases, each under its own time limit: the extension's build starts in the
# background (a copy in /tmp/fii-upstream, the line #include
# <THC/THCAtomics.cuh> removed, TORCH_CUDA_ARCH_LIST=9.0 build_ext
# --inplace); the project builds (Release, warnings reported, not errors);
# ctest's fii tests (test_fii against the golden cases, dcnv4-run on every
# golden fii_* case compared with its tolerances) and a plain dcnv4-run of
# each case; dcnv4-bench --ops fii; the anchor; join.py.
set -uo pipefail
quick=0 bench_args="" anchor_args="" upstream=.device/upstream skip="" overlap=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --bench) bench_args=$2; shift 2 ;;
    --anchor) anchor_args=$2; shift 2 ;;
    --upstream) upstream=$2; shift 2 ;;
    --skip) skip=$2; shift 2 ;;
    --overlap) overlap=1; shift ;;
    *) echo "fii_job.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
skipped() { [[ ",$skip," == *",$1,"* ]]; }
out=${OUT:-/tmp/dcnv4-out}
build=${DCNV4_BUILD_DIR:-/tmp/build}
ext=/tmp/fii-upstream
mkdir -p "$out"
status=0
if [ ! -d "$upstream/classification/models" ] || [ ! -d "$upstream/DCNv4_op" ]; then
  echo "fii_job.sh: $upstream is not a DCNv4 checkout (classification/, DCNv4_op/)" >&2
  skip="$skip,anchor"
  status=1
fi
# shellcheck source=/dev/null
source .device/opencl-nvidia.sh
{
  date -u +%Y-%m-%dT%H:%M:%SZ
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.total --format=csv
  clinfo -l
  python3 -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)'
} 2>&1 | tee "$out/device.txt"

# 1. Upstream's extension, in the background (minutes).
ext_pid=""
if ! skipped anchor && ! ls "$ext"/DCNv4_op/DCNv4/ext*.so >/dev/null 2>&1; then
  rm -rf "$ext" && cp -r "$upstream" "$ext"
  find "$ext/DCNv4_op/src" -type f \( -name '*.c*' -o -name '*.h' \) \
    -exec sed -i '/#include <THC\/THCAtomics.cuh>/d' {} +
  (cd "$ext/DCNv4_op" && TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=8 \
     timeout 480 python3 setup.py build_ext --inplace) >"$out/upstream_build.log" 2>&1 &
  ext_pid=$!
fi

# 2. The project.
if ! skipped build; then
  t0=$(date +%s)
  if ! { cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
           -DCMAKE_PREFIX_PATH=/tmp/dcnv4-root/usr \
           -DDCNV4_WERROR=OFF -DDCNV4_GOLDEN_DIR="$PWD/.device/golden" &&
         cmake --build "$build" -j8; } >"$out/build.log" 2>&1; then
    tail -40 "$out/build.log"
    exit 1
  fi
  echo "build: $(( $(date +%s) - t0 )) s, $(grep -c 'warning:' "$out/build.log") warning(s)"
  grep -A3 'warning:' "$out/build.log" | head -20
fi
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache

# 3. The golden fii cases.
if ! skipped golden; then
  t0=$(date +%s)
  (cd "$build" && timeout 200 ctest -R '^(fii|run_tool_fii)$' \
     --output-on-failure --timeout 180) >"$out/ctest-fii.log" 2>&1 || status=1
  grep -E "tests passed|tests failed|Failed|Timeout|Not Run" "$out/ctest-fii.log"
  for c in .device/golden/fii_*/; do
    c=${c%/}
    if timeout 60 "$build"/tools/dcnv4-run "$c" "$out/golden/$(basename "$c")" \
      >>"$out/golden.log" 2>&1; then
      echo "dcnv4-run $(basename "$c"): ok"
    else
      echo "dcnv4-run $(basename "$c"): FAILED"
      status=1
    fi
  done
  echo "golden: $(( $(date +%s) - t0 )) s"
fi

# The extension's build competes for the CPU: finish it before timing.
if [ -n "$ext_pid" ] && [ "$overlap" = 0 ]; then
  t0=$(date +%s)
  wait "$ext_pid" || echo "upstream extension build FAILED (upstream_build.log)"
  ext_pid=""
  echo "waited $(( $(date +%s) - t0 )) s for the extension"
fi

# 4. Ours.
q=()
[ "$quick" = 1 ] && q=(--quick)
if ! skipped bench; then
  # shellcheck disable=SC2086
  timeout 300 "$build"/bench/dcnv4-bench --no-plot --ops fii "${q[@]}" \
    --out "$out/bench" $bench_args >"$out/bench.log" 2>&1 || status=1
  cat "$out/bench.log"
fi

# 5. Theirs, and the join.
if ! skipped anchor; then
  if [ -n "$ext_pid" ]; then
    wait "$ext_pid" || echo "upstream extension build FAILED (upstream_build.log)"
  fi
  tail -3 "$out/upstream_build.log" 2>/dev/null
  # shellcheck disable=SC2086
  timeout 300 python3 bench/anchor/fii_anchor.py --upstream "$ext" \
    --out "$out/anchor.csv" "${q[@]}" $anchor_args \
    >"$out/anchor.log" 2>"$out/anchor.err" || status=1
  cat "$out/anchor.log"
  tail -5 "$out/anchor.err"
  if [ -f "$out/bench/results.csv" ] && [ -f "$out/anchor.csv" ]; then
    python3 bench/anchor/join.py "$out/bench/results.csv" "$out/anchor.csv" \
      --csv "$out/joined.csv" | tee "$out/join.txt"
  fi
fi
exit $status
