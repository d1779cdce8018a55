#!/usr/bin/env bash
# The reliability checks CI runs after the README's test command (which
# already ran the suite in build/, with the Oclgrind kernel checks and the
# valgrind memcheck subset when those tools are installed; tools/setup.sh
# installs them):
#   1. AddressSanitizer + UndefinedBehaviorSanitizer build (build-asan/) and
#      the whole suite in it, leaks included;
#   2. valgrind memcheck subset      (ctest -L memcheck in build/);
#   3. kernels under Oclgrind        (ctest -L oclgrind in build/);
#   4. fault injection under ASan + UBSan (build-faults/): every allocation
#      and OpenCL call of each operator, layer, context creation and the
#      disk cache made to fail in turn;
#   5. the libFuzzer targets, 30 s each (tools/run_fuzzers.sh).
# Steps 2 and 3 run again here only if asked (CI_RERUN_TOOL_TESTS=1): the
# README's command ran them. Each step fails the script on any finding and
# prints its time.
#   bash tools/ci_checks.sh
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="$(nproc)"

step() {
  local name="$1"
  shift
  local start=$SECONDS
  echo "==== $name"
  "$@"
  echo "==== $name: passed in $((SECONDS - start)) s"
}

require_tests() { # build dir, label: the label must have tests
  if ! ctest --test-dir "$1" -N -L "$2" | grep -q "Total Tests: [1-9]"; then
    echo "no tests labelled $2 in $1 (is the tool installed?)" >&2
    return 1
  fi
}

asan() {
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DDCNV4_SANITIZE=address,undefined -DDCNV4_BUILD_BENCH=OFF
  cmake --build build-asan -j"$jobs"
  # LeakSanitizer's exit-time tracer now and then dies with SIGSEGV while
  # PoCL's worker threads wind down ("Tracer caught signal 11", seen once in
  # five runs); a test that fails is run once more. A real leak or error
  # fails both times.
  ctest --test-dir build-asan --output-on-failure -j"$jobs" \
    --repeat until-pass:2
}

tool_tests() { # label
  require_tests build "$1"
  ctest --test-dir build --output-on-failure -j"$jobs" -L "$1"
}

faults() {
  cmake -S . -B build-faults -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DDCNV4_FAULT_INJECTION=ON -DDCNV4_SANITIZE=address,undefined \
    -DDCNV4_BUILD_BENCH=OFF -DDCNV4_BUILD_EXAMPLES=OFF -DDCNV4_BUILD_TOOLS=OFF
  cmake --build build-faults -j"$jobs" --target test_op_faults test_layer_faults test_fii_faults
  require_tests build-faults faults
  ctest --test-dir build-faults -L faults --output-on-failure \
    --repeat until-pass:2
}

step "ASan+UBSan build and full suite" asan
if [[ "${CI_RERUN_TOOL_TESTS:-0}" == 1 ]]; then
  step "valgrind memcheck subset" tool_tests memcheck
  step "kernels under Oclgrind" tool_tests oclgrind
else
  # The README's command ran them; make sure they were there to run.
  require_tests build memcheck
  require_tests build oclgrind
fi
step "fault injection under ASan+UBSan" faults
step "fuzz targets, 30 s each" bash tools/run_fuzzers.sh 30
