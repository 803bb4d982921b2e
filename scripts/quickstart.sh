#!/usr/bin/env bash
# Sets everything up and runs the main job on the embedded default: the tiny T5 in models/peft-tiny-t5 and the
# built-in task suite in data/builtin (configs/quickstart.yaml).
#   1. pre-trains on the 22 training tasks: an MHR inventory, a Poly inventory (LoRA skills + per-task
#      routing) and one shared LoRA (routing.method none), two at a time;
#   2. adapts to each of the 8 held-out tasks from 32 examples with every variant (scripts/sweep.sh, two
#      cells at a time, one thread each);
#   3. prints the results table (runs/quickstart/adapt/summary.md; also results.csv, results.png).
# Extra arguments (--set key=value) go to every peft command, e.g. `scripts/quickstart.sh --set adapt.steps=20`.
set -euo pipefail
cd "$(dirname "$0")/.."
PEFT_BUILD_TESTS=${PEFT_BUILD_TESTS:-OFF} scripts/setup.sh
out=runs/quickstart
jobs=${JOBS:-2}
start=$(date +%s)
rm -rf "$out"  # a fresh run: sweep.sh would otherwise keep cells adapted from an older pre-training
scripts/pretrain_runs.sh configs/quickstart.yaml "$out" "$@"
echo "[quickstart] adapting with every variant, $jobs cells at a time (log in $out/adapt.log)"
scripts/sweep.sh configs/quickstart.yaml -j "$jobs" --out "$out/adapt" --set run.threads=1 "$@" > "$out/adapt.log" 2>&1 ||
  { echo "[quickstart] adapt failed:" >&2; tail -5 "$out/adapt.log" >&2; exit 1; }
echo
cat "$out/adapt/summary.md"
echo
echo "[quickstart] done in $(( $(date +%s) - start )) s; routing heat map: $out/pretrain-mhr/routing.png," \
     "chart: $out/adapt/results.png, log: $out/adapt.log"
