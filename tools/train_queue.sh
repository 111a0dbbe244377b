#!/usr/bin/env bash
# Train recipes one after another (2 cores: one run at a time) into RUNS_DIR/<name>, resuming any run that was
# interrupted; finished runs are skipped by --resume. Safe to start again after a kill or in a new session:
#   nohup bash tools/train_queue.sh ../flzoo-runs recipes/lite/*.yaml > ../flzoo-runs/queue.log 2>&1 &
# An entry RECIPE.yaml:KEY=VALUE[,KEY=VALUE...] trains the recipe with those --set overrides, named after them
# (or by a name=NAME among them):
#   recipes/lite/pwc.yaml:seed=1                            -> RUNS_DIR/pwc_seed1
#   recipes/lite/pwc_disc.yaml:model.options.adv_weight=0.3 -> RUNS_DIR/pwc_disc_adv_weight0.3
#   recipes/mnv2/pwc.yaml:seed=1,name=pwc.mnv2_seed1        -> RUNS_DIR/pwc.mnv2_seed1
# Each finished run is then evaluated on Helen test from ground-truth crops, the network alone (--no-flip), into
# RUNS_DIR/<name>/eval_gt: the record `flzoo compare` aggregates (docs/ablation).
set -u
cd "$(dirname "$0")/.."
runs="$1"; shift
mkdir -p "$runs"
for entry in "$@"; do
  recipe="${entry%%:*}"
  name="$(basename "$recipe" .yaml)"
  sets=()
  if [ "$entry" != "$recipe" ]; then
    IFS=',' read -ra overrides <<< "${entry#*:}"
    named=""
    for kv in "${overrides[@]}"; do
      key="${kv%%=*}"
      if [ "$key" = name ]; then named="${kv#*=}"; continue; fi
      name="${name}_${key##*.}${kv#*=}"
      sets+=(--set "$kv")
    done
    name="${named:-$name}"
    sets+=(--set "name=$name")
  fi
  out="$runs/$name"
  resume=""
  [ -f "$out/recipe.yaml" ] && resume="--resume"
  echo "$(date -u +%FT%TZ) start $name $resume"
  if flzoo-train "$recipe" --out "$out" --no-progress $resume "${sets[@]}"; then
    if grep -q '"finished": "' "$out/metrics.json" 2>/dev/null && [ ! -f "$out/eval_gt/results.json" ]; then
      flzoo eval --model "$out/best" --subsets helen_test --boxes gt --no-flip --out "$out/eval_gt" \
        || echo "$(date -u +%FT%TZ) $name: evaluation failed ($?)"
    fi
  else
    echo "$(date -u +%FT%TZ) $name failed ($?)"
  fi
done
echo "$(date -u +%FT%TZ) all done"
