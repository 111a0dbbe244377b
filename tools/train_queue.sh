#!/usr/bin/env bash
# Train recipes one after another (2 cores: one run at a time) into RUNS_DIR/<recipe file stem>, resuming any
# run that was interrupted; finished runs are skipped by --resume. Safe to start again after a kill or in a
# new session:
#   nohup bash tools/train_queue.sh ../flzoo-runs recipes/lite/*.yaml > ../flzoo-runs/queue.log 2>&1 &
set -u
cd "$(dirname "$0")/.."
runs="$1"; shift
mkdir -p "$runs"
for recipe in "$@"; do
  name="$(basename "$recipe" .yaml)"
  out="$runs/$name"
  resume=""
  [ -f "$out/recipe.yaml" ] && resume="--resume"
  echo "$(date -u +%FT%TZ) start $name $resume"
  flzoo-train "$recipe" --out "$out" --no-progress $resume || echo "$(date -u +%FT%TZ) $name failed ($?)"
done
echo "$(date -u +%FT%TZ) all done"
