#!/usr/bin/env bash
# Rebuilds the embedded default backbone, models/peft-tiny-t5/ (docs/backbone.md): a tiny T5 v1.1-style model
# pre-trained from random initialisation on a synthetic corpus. Maintainers only: the result is committed, so
# the quickstart never runs this. Seeded; on the same machine and LibTorch build a rerun gives the same files
# (other CPUs or LibTorch versions may differ in the last float bits).
#
#   scripts/make_backbone.sh [OUT_DIR]        (default models/peft-tiny-t5; ~11 min on one CPU core)
#
# Environment: STEPS (default 1000), THREADS (1: on a busy machine two OpenMP threads ran 14x slower), SEED (1234), PEFT (the peft executable, default build/peft).
#
# 1. scripts/make_backbone_corpus.py writes build/backbone/corpus.txt (3 MB) and corpus.valid.txt.
# 2. `peft backbone` trains a 1500-piece SentencePiece unigram vocabulary (pad 0, eos 1, unk 2) on it,
#    then the model with T5's span corruption (15% noise, mean span 3), AdamW, linear schedule, and writes
#    config.json, model.safetensors, spiece.model, tokenizer_config.json, special_tokens_map.json.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-models/peft-tiny-t5}"
STEPS="${STEPS:-1000}"
THREADS="${THREADS:-1}"
SEED="${SEED:-1234}"
PEFT="${PEFT:-build/peft}"
WORK=build/backbone

if [ ! -x "$PEFT" ]; then
  echo "make_backbone: $PEFT not found; build it first (scripts/setup.sh)" >&2
  exit 2
fi
python3 scripts/make_backbone_corpus.py --out "$WORK"
rm -rf "$WORK/train"  # a fresh run, not a resume of an older one
"$PEFT" backbone --corpus "$WORK/corpus.txt" --out "$OUT" --work-dir "$WORK/train" \
  --steps "$STEPS" --batch-size 32 --input-length 64 --lr 2e-3 --sp-vocab 1500 \
  --seed "$SEED" --threads "$THREADS" --dtype float32 --log-every 50
cp "$WORK/train/metrics.jsonl" "$OUT/training_metrics.jsonl"
ls -l "$OUT"
