#!/usr/bin/env bash
# Pre-trains the three runs a full adaptation sweep draws on, two at a time, one thread each:
#   OUT/pretrain-mhr          the config as it is (routing.method mhr)
#   OUT/pretrain-poly         routing.method poly, routing.n_heads 1
#   OUT/pretrain-shared-lora  routing.method none: one LoRA shared by every task (for the shared-lora variant)
# which is what adapt.pretrained / adapt.more_pretrained name in configs/quickstart.yaml and superni-tiny.yaml.
#
#   scripts/pretrain_runs.sh CONFIG OUT [--set key=value]...
set -euo pipefail
cd "$(dirname "$0")/.."
peft=${PEFT:-build/peft}
[ $# -ge 2 ] || { sed -n 2,8p "$0"; exit 2; }
config=$1 out=$2; shift 2
mkdir -p "$out"
start=$(date +%s)
pretrain() {  # name [--set ...]
  local name=$1; shift
  "$peft" pretrain "$config" --out "$out/pretrain-$name" --threads 1 "$@" > "$out/pretrain-$name.log" 2>&1 ||
    { echo "[pretrain_runs] $name failed ($out/pretrain-$name.log):" >&2; tail -5 "$out/pretrain-$name.log" >&2; exit 1; }
  echo "[pretrain_runs] $name done at $(( $(date +%s) - start )) s:" \
       "$(grep -m1 '^| held-out Rouge-L' "$out/pretrain-$name/summary.md" | cut -d'|' -f2-3 | sed 's/ *| */: /')"
}
echo "[pretrain_runs] MHR, Poly and shared-LoRA runs of $config into $out (logs: $out/pretrain-*.log)"
pretrain mhr "$@" & mhr=$!
pretrain poly --set routing.method=poly --set routing.n_heads=1 "$@" & poly=$!
wait $mhr
pretrain shared-lora --set routing.method=none --set routing.n_heads=1 "$@" & shared=$!
wait $poly
wait $shared
