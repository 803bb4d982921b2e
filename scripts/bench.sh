#!/usr/bin/env bash
# Reproduces docs/performance.md: T5-small shape (random weights), batch 8, 128 source / 32 target tokens.
#   scripts/bench.sh                      # every method, 5 timed rounds after 2 warm-up steps
#   STEPS=20 WARMUP=5 METHODS=lora,mhr scripts/bench.sh
#   GEN_ROUNDS=12 METHODS=base,lora scripts/bench.sh   # more timed generations (default: min(STEPS, 5))
#   MODEL=t5-base-shape THREADS=2 scripts/bench.sh
#   MODEL=bert-base-shape scripts/bench.sh  # BERT classifier: train + eval, no generation
# Writes the table to stdout and JSON to ${JSON:-bench.json}. The machine should be otherwise idle: the
# figures scale with free cores (the run records the load average and measures GEMM throughput itself).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-t5-small-shape}
METHODS=${METHODS:-}
BATCH=${BATCH:-8}
SRC_LEN=${SRC_LEN:-128}
TGT_LEN=${TGT_LEN:-32}
STEPS=${STEPS:-5}
WARMUP=${WARMUP:-2}
GEN_ROUNDS=${GEN_ROUNDS:-0}
THREADS=${THREADS:-0}
JSON=${JSON:-bench.json}
PEFT_BUILD_TESTS=${PEFT_BUILD_TESTS:-OFF} scripts/setup.sh   # install what is missing, build build/peft (Release)
echo "[bench] load average before: $(cut -d' ' -f1-3 /proc/loadavg), cores: $(nproc)"
args=(bench --batch "$BATCH" --src-len "$SRC_LEN" --tgt-len "$TGT_LEN" --steps "$STEPS" --warmup "$WARMUP"
      --gen-rounds "$GEN_ROUNDS" --json "$JSON")
[[ -n "$METHODS" ]] && args+=(--methods "$METHODS")
[[ "$MODEL" != t5-small-shape ]] && args+=(--model "$MODEL")
[[ "$THREADS" != 0 ]] && args+=(--threads "$THREADS")
build/peft "${args[@]}"
echo "[bench] load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
