#!/usr/bin/env bash
# Installs what egress needs (apt), builds it and runs every test: unit tests
# and the privileged integration tests (real BPF, real cgroups, real sockets).
# Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
build=${EGRESS_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure --timeout 600 "$@"
