#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every test.
# Extra arguments go to ctest (e.g. -L unit, -R Resume).
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j2
cd build
ctest -j2 --output-on-failure --no-tests=error "$@"
