#!/usr/bin/env bash
# Sets everything up and runs the main job on the embedded default.
# For now (foundation stage): builds peft, shows its help and validates the quickstart config.
set -euo pipefail
cd "$(dirname "$0")/.."
PEFT_BUILD_TESTS=OFF scripts/setup.sh
build/peft --help
build/peft config configs/quickstart.yaml
