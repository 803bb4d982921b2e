#!/usr/bin/env bash
# Reproduces docs/performance.md: T5-small shape (random weights), batch 8, 128 source / 32 target tokens.
#   scripts/bench.sh                      # every method, 5 timed steps after 2 warm-up
#   STEPS=20 WARMUP=5 METHODS=lora,mhr scripts/bench.sh
#   MODEL=t5-base-shape THREADS=2 scripts/bench.sh
#   MODEL=bert-base-shape scripts/bench.sh  # BERT classifier: train + eval, no generation
# Writes the table to stdout and JSON to ${JSON:-bench.json}. The machine should be otherwise idle: the
# figures scale with free cores (the run records the load average and measures GEMM throughput itself).
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
BUILD=${BUILD:-build-bench}
MODEL=${MODEL:-t5-small-shape}
METHODS=${METHODS:-}
BATCH=${BATCH:-8}
SRC_LEN=${SRC_LEN:-128}
TGT_LEN=${TGT_LEN:-32}
STEPS=${STEPS:-5}
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-0}
JSON=${JSON:-bench.json}
echo "[bench] load average before: $(cut -d' ' -f1-3 /proc/loadavg), cores: $(nproc)"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null

# Prefer the real command once it is wired to train::run_bench; otherwise run the same function through
# the test binary's disabled driver (tests/train/bench_test.cpp, Bench.DISABLED_Measure).
if cmake --build "$BUILD" --target peft -j2 >/dev/null 2>&1 &&
   "$BUILD/peft" bench --help 2>/dev/null | grep -q -- --threads &&
   "$BUILD/peft" bench --methods base --batch 1 --src-len 4 --tgt-len 2 --steps 1 --warmup 0 >/dev/null 2>&1; then
  args=(bench --batch "$BATCH" --src-len "$SRC_LEN" --tgt-len "$TGT_LEN" --steps "$STEPS" --warmup "$WARMUP"
        --json "$JSON")
  [[ -n "$METHODS" ]] && args+=(--methods "$METHODS")
  [[ "$MODEL" != t5-small-shape ]] && args+=(--model "$MODEL")
  [[ "$THREADS" != 0 ]] && args+=(--threads "$THREADS")
  "$BUILD/peft" "${args[@]}"
else
  cmake --build "$BUILD" --target test_train -j2 >/dev/null
  PEFT_BENCH_MODEL="$MODEL" PEFT_BENCH_METHODS="$METHODS" PEFT_BENCH_BATCH="$BATCH" PEFT_BENCH_SRC_LEN="$SRC_LEN" \
  PEFT_BENCH_TGT_LEN="$TGT_LEN" PEFT_BENCH_STEPS="$STEPS" PEFT_BENCH_WARMUP="$WARMUP" PEFT_BENCH_THREADS="$THREADS" \
  PEFT_BENCH_JSON="$JSON" "$BUILD/test_train" --gtest_filter=Bench.DISABLED_Measure --gtest_also_run_disabled_tests |
    grep -v '^\[\|^Running main\|^Note: \|^$'
fi
echo "[bench] load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
