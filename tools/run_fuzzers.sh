#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang, AddressSanitizer and
# UBSan into build-fuzz/ and runs each for a bounded time, starting from the
# committed seeds in tests/fuzz/corpus/<target>/ (new inputs go to
# build-fuzz/corpus/<target>/, never into the source tree).
#   bash tools/run_fuzzers.sh [seconds per target, default 45] [target...]
# Targets: npy meta safetensors params. On Debian, installs clang and
# libclang-rt-14-dev (libFuzzer) when missing and running as root.
# A crash leaves build-fuzz/artifacts/<target>-crash-*; fix the bug, then
# commit the input to tests/fuzz/corpus/<target>/ so that the CTest test
# fuzz_replay_<target> checks it in every build.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-45}"
shift || true
targets=("$@")
((${#targets[@]})) || targets=(npy meta safetensors params)

if ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' |
    clang -x c -fsanitize=fuzzer,address - -o /dev/null 2>/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends clang libclang-rt-14-dev
  else
    echo "clang with libFuzzer is needed (Debian: clang libclang-rt-14-dev)" >&2
    exit 1
  fi
fi

build="${FUZZ_BUILD_DIR:-build-fuzz}"
CC=clang cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDCNV4_BUILD_FUZZERS=ON -DDCNV4_SANITIZE=address,undefined \
  -DDCNV4_WERROR=OFF -DDCNV4_BUILD_TOOLS=OFF -DDCNV4_BUILD_BENCH=OFF \
  -DDCNV4_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" --target "${targets[@]/#/fuzz_}"

mkdir -p "$build/artifacts"
# One target per core at a time (each fuzzer runs one process): the same
# seconds per target in less wall time on CI's two cores.
fuzz_one() {
  local t=$1 work="$build/corpus/$1"
  mkdir -p "$work"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$t-" "$work" "tests/fuzz/corpus/$t" \
    2>"$build/fuzz_$t.log"
}
jobs_at_once=$(nproc 2>/dev/null || echo 1)
status=0
for ((i = 0; i < ${#targets[@]}; i += jobs_at_once)); do
  batch=("${targets[@]:i:jobs_at_once}")
  pids=()
  for t in "${batch[@]}"; do
    echo "== fuzz_$t for ${seconds}s"
    fuzz_one "$t" &
    pids+=($!)
  done
  for j in "${!batch[@]}"; do
    t=${batch[j]}
    if ! wait "${pids[j]}"; then
      status=1
      echo "fuzz_$t FAILED; log: $build/fuzz_$t.log" >&2
      tail -40 "$build/fuzz_$t.log" >&2
    else
      echo "fuzz_$t: $(grep -E "stat::number_of_executed_units|stat::new_units_added" \
        "$build/fuzz_$t.log" | tr '\n' ' ')"
    fi
  done
done
exit $status
