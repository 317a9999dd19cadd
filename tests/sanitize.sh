#!/usr/bin/env bash
# The checks gcc's Release build cannot make: builds the unit tests with clang,
# its thread-safety analysis as errors (-Wthread-safety: every ABSL_GUARDED_BY
# field touched only under its mutex), AddressSanitizer and
# UndefinedBehaviorSanitizer, and runs the tests labelled "unit" there.
# tests/run.sh runs it after the whole suite; it can also run alone.
# Extra arguments go to ctest (e.g. -R Journal).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${MEDEVAL_SANITIZE_BUILD_DIR:-build-tsa}

launcher=()
if command -v ccache > /dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
JOBS=${MEDEVAL_SANITIZE_JOBS:-2}

# Compiling is most of this step's time: -O0 compiles 40% faster than -O1 and the unit
# tests stay quick; line tables are all the reports need to name file and line.
CC=clang CXX=clang++ cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS_DEBUG="-O0 -gline-tables-only" \
  -DMEDEVAL_THREAD_SAFETY=ON -DMEDEVAL_SANITIZE=ON -DMEDEVAL_BUILD_BENCH=OFF "${launcher[@]}"
# Only the unit tests (and what they link and run: the libraries and the medeval binary).
cmake --build "$BUILD" -j"$JOBS" --target common_test sim_test worker_test coordinator_test \
  client_test audit_test

cd "$BUILD"
# A finding fails its test: UBSan stops at the first one, ASan always does.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1
ctest -j2 -L unit --output-on-failure --no-tests=error "$@"
