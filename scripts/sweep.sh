#!/usr/bin/env bash
# Runs variants x seeds x held-out tasks of `peft adapt`, one cell per process, and aggregates them into one
# results table (results.jsonl, results.csv, summary.md, results.png in OUT).
#
#   scripts/sweep.sh CONFIG [-j N] [--variants a,b] [--seeds 13,42] [--tasks t1,t2] [--out DIR] [--set k=v]...
#
# Cells already done (OUT/cells/<task>/<variant>/seed<seed>/results.jsonl exists) are skipped, so an interrupted
# sweep continues where it stopped. -j N runs N cells at once (give each `--set run.threads=K` so N*K <= cores).
# Defaults: variants and seeds from the config (adapt.variants, adapt.seeds), every held-out task.
#
# Cluster (Slurm): one cell per array index, then one aggregation job:
#   n=$(scripts/sweep.sh CONFIG --count)                                   # number of cells
#   sbatch --array=0-$((n-1)) --wrap "scripts/sweep.sh CONFIG --cell \$SLURM_ARRAY_TASK_ID"
#   sbatch --dependency=singleton --wrap "scripts/sweep.sh CONFIG --aggregate"
set -euo pipefail
cd "$(dirname "$0")/.."
peft=${PEFT:-build/peft}
[ $# -ge 1 ] || { sed -n 2,15p "$0"; exit 2; }
config=$1; shift
jobs=1 variants="" seeds="" tasks="" out="" mode=all cell=-1 sets=()
while [ $# -gt 0 ]; do
  case $1 in
    -j) jobs=$2; shift 2 ;;
    --variants) variants=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --tasks) tasks=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    --count) mode=count; shift ;;
    --cell) mode=cell; cell=$2; shift 2 ;;
    --aggregate) mode=aggregate; shift ;;
    -h|--help) sed -n 2,15p "$0"; exit 0 ;;
    *) echo "sweep.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -x "$peft" ] || { echo "sweep.sh: $peft not built (run scripts/setup.sh)" >&2; exit 2; }

# Resolved values from the config itself (plus --set), so the sweep and `peft adapt` agree.
resolved=$("$peft" config "$config" "${sets[@]+"${sets[@]}"}")
key() { printf '%s\n' "$resolved" | awk -v s="$1" -v k="$2" '
  /^[a-z_]+:/ {sec=$1; sub(":","",sec)} sec==s && $1==k":" {sub(/^[^:]*: */,""); print; exit}'; }
list() { tr -d '[] ' | tr ',' '\n' | sed '/^$/d'; }
[ -n "$out" ] || out=$(key run out)
[ -n "$variants" ] || variants=$(key adapt variants)
[ -n "$seeds" ] || seeds=$(key adapt seeds)
if [ -z "$tasks" ]; then
  tasks=$(key adapt tasks)
  [ "$(echo "$tasks" | list | wc -l)" -gt 0 ] ||
    tasks=$("$peft" data stats "$config" "${sets[@]+"${sets[@]}"}" 2>/dev/null | awk '$2=="test" {print $1}' | paste -sd,)
fi
# One comma-separated form whether a list came from the command line (a,b) or from the config ([a, b]).
variants=$(echo "$variants" | list | paste -sd,)
seeds=$(echo "$seeds" | list | paste -sd,)
tasks=$(echo "$tasks" | list | paste -sd,)
mapfile -t cells < <(for t in $(echo "$tasks" | list); do for v in $(echo "$variants" | list); do
  for s in $(echo "$seeds" | list); do echo "$t $v $s"; done; done; done)
[ ${#cells[@]} -gt 0 ] || { echo "sweep.sh: no cells (no held-out tasks, variants or seeds)" >&2; exit 2; }

# --set arguments travel to the parallel workers through the environment, one per line.
export SWEEP_SETS
SWEEP_SETS=$(printf '%s\n' "${sets[@]+"${sets[@]}"}")
run_cell() {  # task variant seed
  local dir="$out/cells/$1/$2/seed$3" s=()
  [ -z "${SWEEP_SETS:-}" ] || mapfile -t s <<< "$SWEEP_SETS"
  if [ -s "$dir/results.jsonl" ]; then echo "[sweep] done already: $1 $2 seed $3"; return 0; fi
  echo "[sweep] running: $1 $2 seed $3"
  "$peft" adapt "$config" --variant "$2" --seeds "$3" --tasks "$1" --out "$dir" "${s[@]+"${s[@]}"}" --log-level warn
}

aggregate() {
  mkdir -p "$out"
  find "$out/cells" -name results.jsonl -print0 2>/dev/null | sort -z | xargs -0 -r cat > "$out/results.jsonl.tmp"
  mv "$out/results.jsonl.tmp" "$out/results.jsonl"
  # Every cell is in results.jsonl, so `peft adapt` runs none and writes the table, CSV and chart of all rows.
  "$peft" adapt "$config" --out "$out" --set "adapt.variants=[$variants]" --set "adapt.seeds=[$seeds]" \
    --set "adapt.tasks=[$tasks]" "${sets[@]+"${sets[@]}"}" --log-level warn
  cat "$out/summary.md"
}

case $mode in
  count) echo ${#cells[@]} ;;
  cell) [ "$cell" -ge 0 ] && [ "$cell" -lt ${#cells[@]} ] || { echo "sweep.sh: --cell $cell out of 0..$((${#cells[@]}-1))" >&2; exit 2; }
        run_cell ${cells[$cell]} ;;
  aggregate) aggregate ;;
  all)
    export -f run_cell; export peft config out
    printf '%s\n' "${cells[@]}" | xargs -P "$jobs" -L 1 bash -c 'run_cell "$0" "$1" "$2"'
    aggregate ;;
esac
