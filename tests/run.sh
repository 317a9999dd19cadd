#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every test, then
# the unit tests once more under clang's checks (tests/sanitize.sh).
# Extra arguments go to the first ctest (e.g. -L unit, -R Resume).
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j2
(cd build && ctest -j2 --output-on-failure --no-tests=error "$@")
# Then the unit tests again, built with clang's thread-safety analysis as errors and run under
# AddressSanitizer and UndefinedBehaviorSanitizer (MEDEVAL_SANITIZE_STEP=0 skips this).
if [ "${MEDEVAL_SANITIZE_STEP:-1}" != 0 ]; then
  tests/sanitize.sh
fi
