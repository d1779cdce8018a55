#!/usr/bin/env bash
# The CUDA anchors on the GPU machine (issue 34): upstream's and the fork's
# extensions built (or reused), dcnv4-bench's operator rows, the same rows
# through bench/anchor/op_anchor.py, and the join.
#
# Here, first (from the project's root):
#   bash tools/device/prepare.sh            # .device/: CLBlast, ICD loader
#   cp -r /path/to/DCNv4 .device/upstream   # OpenGVLab/DCNv4 (DCNv4_op/)
#   cp -r /path/to/fork .device/fork        # nusu-github/DCNv4 (optional)
#   # an earlier job's $OUT/ext/* (IMPL-so.tgz[.NN]) -> .device/ext/
# then the device tool's run with carry [".device"] (or, to stay within the
# 64 MiB a call carries, ".device/debs", ".device/opencl-nvidia.sh",
# ".device/upstream", ".device/fork", ".device/ext") and the command
#   bash tools/device/anchor_job.sh [--skip LIST] [--ops LIST] [--quick]
#                                   [--bench "ARGS"] [--anchor "ARGS"]
#
#   --ops LIST       rows of core,layer,fda (default all three), both sides
#   --quick          dcnv4-bench --quick's rows, 15 launches, both sides
#   --bench ARGS     more dcnv4-bench arguments (e.g. "--dtype float32")
#   --anchor ARGS    more op_anchor.py arguments (e.g. "--dtypes float32")
#   --upstream DIR   default .device/upstream;  --fork DIR  default
#                    .device/fork (left out when absent)
#   --ext-dir DIR    kept extensions (default .device/ext): reused when
#                    there, else built there and copied to $OUT/ext/
#   --skip LIST      phases to leave out, of ext,build,bench,anchor,join
#
# $OUT gets at most 8 files (the device tool's limit): results.csv (ours),
# anchor.csv, joined.csv, join.txt, logs.tgz (every log) and, when built in
# this job, ext/IMPL-so.tgz (in 15 MiB parts .00, .01 when larger).
#
# With both extensions to build, the job does not fit one call's 10
# minutes; on one warm machine, two calls:
#   bash tools/device/anchor_job.sh --skip anchor,join   # builds, ours
#   bash tools/device/anchor_job.sh --skip build,bench   # theirs, the join
# (the second finds the first's build, extensions and CSVs under /tmp; the
# anchor splits further, one call per --ops: on an H100 core's anchors took
# 479 s and layer,fda's together more than 500 s, so core, layer and fda
# each in its own call; the join reads every anchor CSV of
# /tmp/dcnv4-anchor/).
set -uo pipefail
ops=core,layer,fda quick=0 bench_args="" anchor_args="" skip=""
upstream=.device/upstream fork=.device/fork ext_dir=.device/ext
while [ $# -gt 0 ]; do
  case "$1" in
    --ops) ops=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --bench) bench_args=$2; shift 2 ;;
    --anchor) anchor_args=$2; shift 2 ;;
    --upstream) upstream=$2; shift 2 ;;
    --fork) fork=$2; shift 2 ;;
    --ext-dir) ext_dir=$2; shift 2 ;;
    --skip) skip=$2; shift 2 ;;
    *) echo "anchor_job.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
skipped() { [[ ",$skip," == *",$1,"* ]]; }
out=${OUT:-/tmp/dcnv4-out}
build=${DCNV4_BUILD_DIR:-/tmp/build}
keep=/tmp/dcnv4-anchor       # CSVs for a later call on the same machine
logs=$keep/logs-$(date +%s)  # this call's logs, bundled into logs.tgz
mkdir -p "$out" "$logs"
status=0
checkouts=(--upstream "$upstream")
[ -d "$fork" ] && checkouts+=(--fork "$fork")
q=()
[ "$quick" = 1 ] && q=(--quick)
finish() {
  tar czf "$out/logs.tgz" -C "$logs" . 2>/dev/null
  exit "$status"
}
# shellcheck source=/dev/null
source .device/opencl-nvidia.sh
{
  date -u +%Y-%m-%dT%H:%M:%SZ
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.total --format=csv
  python3 -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)'
  for d in "$upstream" "$fork"; do
    [ -d "$d/.git" ] && echo "$d: $(git -C "$d" log -1 --format='%H %cs' 2>/dev/null)"
  done
} 2>&1 | tee "$logs/device.txt"

# 1. The extensions, in the background (minutes, unless kept: in --ext-dir,
# or under /tmp from an earlier call, whose carried .device/ replaced ours).
mkdir -p "$ext_dir" "$keep/ext"
for f in "$keep"/ext/*-so.tgz*; do
  [ -e "$f" ] && [ ! -e "$ext_dir/${f##*/}" ] && cp "$f" "$ext_dir/"
done
ext_pid=""
if ! skipped ext; then
  python3 bench/anchor/op_anchor.py "${checkouts[@]}" --ext-dir "$ext_dir" \
    --work /tmp/dcnv4-anchor-work --build-only >"$logs/ext.log" 2>&1 &
  ext_pid=$!
fi

# 2. The project (dcnv4-bench only).
if ! skipped build; then
  t0=$(date +%s)
  if ! { cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
           -DCMAKE_PREFIX_PATH=/tmp/dcnv4-root/usr -DDCNV4_WERROR=OFF &&
         cmake --build "$build" -j8 --target dcnv4-bench; } \
      >"$logs/build.log" 2>&1; then
    tail -40 "$logs/build.log"
    status=1
    finish
  fi
  echo "build: $(( $(date +%s) - t0 )) s, $(grep -c 'warning:' "$logs/build.log") warning(s)"
fi
export DCNV4_CACHE_DIR=/tmp/dcnv4-cache

# The builds compete for the CPU: finish them before timing anything.
if [ -n "$ext_pid" ]; then
  t0=$(date +%s)
  wait "$ext_pid" || { echo "extension build FAILED"; status=1; }
  cat "$logs/ext.log"
  echo "waited $(( $(date +%s) - t0 )) s for the extensions"
  cp /tmp/dcnv4-anchor-work/*-build.log "$logs/" 2>/dev/null
  new=$(find "$ext_dir" -maxdepth 1 -name '*-so.tgz*' -newer "$logs/device.txt")
  if [ -n "$new" ]; then
    mkdir -p "$out/ext"
    # shellcheck disable=SC2086
    cp $new "$out/ext/" && cp $new "$keep/ext/"
  fi
fi

# 3. Ours.
if ! skipped bench; then
  # shellcheck disable=SC2086
  timeout 420 "$build"/bench/dcnv4-bench --no-plot --ops "$ops" "${q[@]}" \
    --out "$keep/bench" $bench_args >"$logs/bench.log" 2>&1 || status=1
  cat "$logs/bench.log"
  cp "$keep/bench/results.csv" "$out/results.csv" 2>/dev/null
fi

# 4. Theirs: each (checkout, shape) in its own process, crashes recorded.
if ! skipped anchor; then
  csv=$keep/anchor-$(date +%s).csv
  # shellcheck disable=SC2086
  PYTHONUNBUFFERED=1 timeout 540 python3 bench/anchor/op_anchor.py \
    "${checkouts[@]}" --ext-dir "$ext_dir" --work /tmp/dcnv4-anchor-work \
    --ops "$ops" "${q[@]}" --out "$csv" $anchor_args \
    >"$logs/anchor.log" 2>"$logs/anchor.err" || status=1
  cat "$logs/anchor.log"
  grep -E "Error|error:" "$logs/anchor.err" | sort | uniq -c | head -10
  cp "$csv" "$out/anchor.csv" 2>/dev/null
fi

# 5. The join: ours of this call or an earlier one, every anchor CSV.
if ! skipped join; then
  results=$keep/bench/results.csv
  anchors=("$keep"/anchor-*.csv)
  if [ -f "$results" ] && [ -f "${anchors[0]}" ]; then
    python3 bench/anchor/join.py "$results" "${anchors[@]}" \
      --csv "$out/joined.csv" | tee "$out/join.txt"
  else
    echo "join: no results.csv or anchor CSV yet"
  fi
fi
finish
