#!/usr/bin/env bash
# The SuperNI table of docs/results.md, end to end (~1.5 h on 2 CPU cores; every step skips what is done):
#   1. text of the 60 training tasks -> build/superni-backbone/corpus.txt (scripts/make_superni_corpus.py)
#   2. a small T5 (d_model 128, 3+3 layers, 9.7M parameters) pre-trained on it with T5's span corruption and
#      the real T5 vocabulary (../shared/models/t5-tokenizer) -> build/superni-backbone/model
#   3. MHR, Poly and shared-LoRA pre-training on the 60 tasks (scripts/pretrain_runs.sh)
#   4. every adaptation variant x 3 seeds x 10 held-out tasks (scripts/sweep.sh -j 2)
#
#   scripts/superni.sh [--set key=value]...      (SUPERNI=dir to read another copy of the data)
set -euo pipefail
cd "$(dirname "$0")/.."
superni=${SUPERNI:-../shared/data/superni}
tokenizer=${T5_TOKENIZER:-../shared/models/t5-tokenizer}
[ -d "$superni/train" ] || { echo "superni.sh: $superni/train not found (set SUPERNI=...)" >&2; exit 2; }
[ -f "$tokenizer/spiece.model" ] || { echo "superni.sh: $tokenizer/spiece.model not found (set T5_TOKENIZER=...)" >&2; exit 2; }
PEFT_BUILD_TESTS=${PEFT_BUILD_TESTS:-OFF} scripts/setup.sh
work=build/superni-backbone out=runs/superni-tiny
start=$(date +%s)
if [ ! -f "$work/model/model.safetensors" ]; then
  python3 scripts/make_superni_corpus.py --superni "$superni" --out "$work"
  resume=(); [ -f "$work/train/checkpoint/state.json" ] && resume=(--resume)
  build/peft backbone --corpus "$work/corpus.txt" --out "$work/model" --work-dir "$work/train" \
    --spiece "$tokenizer/spiece.model" --steps 1500 --batch-size 32 --input-length 128 --lr 2e-3 --seed 1234 \
    --threads 1 --log-every 50 "${resume[@]+"${resume[@]}"}"
  cp "$work/train/metrics.jsonl" "$work/model/training_metrics.jsonl"
  echo "[superni] backbone done at $(( $(date +%s) - start )) s"
fi
[ -f "$out/pretrain-shared-lora/adapter/adapter_config.json" ] || scripts/pretrain_runs.sh configs/superni-tiny.yaml "$out" "$@"
scripts/sweep.sh configs/superni-tiny.yaml -j 2 --out "$out/adapt" --set run.threads=1 "$@"
echo "[superni] done in $(( $(date +%s) - start )) s; table: $out/adapt/summary.md, chart: $out/adapt/results.png"
