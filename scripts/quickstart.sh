#!/usr/bin/env bash
# Sets everything up and runs the main job on the embedded default: the tiny T5 in models/peft-tiny-t5 and the
# built-in task suite in data/builtin.
#   1. pre-trains an MHR inventory (LoRA skills + per-task routing) on the 22 training tasks,
#   2. adapts to each of the 8 held-out tasks from 32 examples with every variant in configs/quickstart.yaml,
#   3. prints the results table (runs/quickstart/adapt/summary.md; also results.csv, results.png).
# Extra arguments go to both peft commands, e.g. `scripts/quickstart.sh --set train.steps=100`.
set -euo pipefail
cd "$(dirname "$0")/.."
PEFT_BUILD_TESTS=${PEFT_BUILD_TESTS:-OFF} scripts/setup.sh
out=runs/quickstart
start=$(date +%s)
build/peft pretrain configs/quickstart.yaml --out "$out/pretrain-mhr" "$@"
build/peft adapt configs/quickstart.yaml --out "$out/adapt" --set adapt.pretrained="$out/pretrain-mhr" "$@"
echo
cat "$out/pretrain-mhr/summary.md"
echo
cat "$out/adapt/summary.md"
echo
echo "[quickstart] done in $(( $(date +%s) - start )) s; routing heat map: $out/pretrain-mhr/routing.png, chart: $out/adapt/results.png"
