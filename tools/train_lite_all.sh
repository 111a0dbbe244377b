#!/usr/bin/env bash
# Train the 8 lite variants one after another (2 cores: one run at a time), resuming any run that was
# interrupted. Safe to start again after a kill or a new session: finished runs are skipped by --resume.
#   nohup bash tools/train_lite_all.sh [RUNS_DIR] > train_lite_all.log 2>&1 &
set -u
cd "$(dirname "$0")/.."
runs="${1:-${FLZOO_RUNS:-../flzoo-runs}}"
order="${FLZOO_VARIANTS:-hybrid distribution pwc hybrid_disc heatmap_reg direct pwc_disc cascaded}"
mkdir -p "$runs"
for variant in $order; do
  out="$runs/$variant"
  resume=""
  [ -f "$out/recipe.yaml" ] && resume="--resume"
  echo "$(date -u +%FT%TZ) start $variant $resume"
  flzoo-train "recipes/lite/$variant.yaml" --out "$out" --no-progress $resume || echo "$(date -u +%FT%TZ) $variant failed ($?)"
done
echo "$(date -u +%FT%TZ) all done"
