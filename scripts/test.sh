#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
start=$(date +%s)
(cd build && ctest --output-on-failure -j"$(nproc)" "$@")
echo "[test] suite ran in $(( $(date +%s) - start )) s"
