#!/usr/bin/env bash
# Installs the Debian 12 packages medeval needs (only those missing).
#   deploy/install-deps.sh            build + test dependencies
#   deploy/install-deps.sh --build    build dependencies only (container images)
#   deploy/install-deps.sh --runtime  what the built binary needs to run
set -euo pipefail

RUNTIME=(
  libgrpc++1.51 libprotobuf32 libabsl20220623 libcurl4 libssl3 zlib1g libyaml-cpp0.7 libzip4
  libprometheus-cpp-core1.0 libpoppler-cpp0v5 ca-certificates
)
BUILD=(
  build-essential cmake pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libcurl4-openssl-dev libssl-dev zlib1g-dev nlohmann-json3-dev libcli11-dev libyaml-cpp-dev
  libzip-dev prometheus-cpp-dev libpoppler-cpp-dev libboost-dev
)
# Tests also use real TLS certificates, network namespaces, a headless browser, Python to
# check the chart values and the deployment files, and Go with the Go libraries an offline
# `helm template`/`helm lint` is built from when Helm itself is not installed. The unit tests
# are built once more with clang (thread-safety analysis) under AddressSanitizer and
# UndefinedBehaviorSanitizer: clang, their runtimes (only recommended by clang, so named here)
# and llvm-symbolizer for readable reports.
TEST=(clang libclang-rt-14-dev llvm
  libgtest-dev libgmock-dev openssl iproute2 chromium fonts-wqy-microhei
  python3 python3-yaml python3-jsonschema
  golang-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev golang-gopkg-yaml.v3-dev
  golang-github-xeipuuv-gojsonschema-dev golang-github-burntsushi-toml-dev
  golang-github-gobwas-glob-dev golang-github-pkg-errors-dev)

case "${1:-}" in
  --runtime) wanted=("${RUNTIME[@]}") ;;
  --build) wanted=("${BUILD[@]}") ;;
  "") wanted=("${BUILD[@]}" "${TEST[@]}") ;;
  *) echo "usage: $0 [--build|--runtime]" >&2; exit 2 ;;
esac

missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi
echo "installing: ${missing[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  "${missing[@]}"
