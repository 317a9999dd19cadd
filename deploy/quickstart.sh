#!/usr/bin/env bash
# On a fresh Debian 12 machine: install what is needed, build, and run the
# sample suite end to end against the built-in simulated model.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j2 --target medeval
build/medeval demo "$@"
