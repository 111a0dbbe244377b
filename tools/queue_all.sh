#!/usr/bin/env bash
# Every long training run still to do, in order, resumable (tools/train_queue.sh). Start it at the beginning of
# each session; finished runs are skipped:
#   nohup bash tools/queue_all.sh ../flzoo-runs >> ../flzoo-runs/queue.log 2>&1 &
# 1. the zoo on MobileNetV2 (issue 14; docs/training.md "Pilots"), 2. the ablation's seeds and adversarial-weight
# sweep on the lite backbone (issue 18; seed 0 of each is the bundled lite model's run, docs/runs/<variant>).
set -u
cd "$(dirname "$0")/.."
runs="${1:?usage: tools/queue_all.sh RUNS_DIR}"
# A zoo run whose model is bundled (flzoo/presets/<variant>.mnv2) is done even when its runs folder is gone.
zoo=()
for variant in hybrid hybrid_disc pwc pwc_disc distribution heatmap_reg direct; do
  [ -d "flzoo/presets/$variant.mnv2" ] || zoo+=("recipes/mnv2/$variant.yaml")
done
bash tools/train_queue.sh "$runs/zoo" "${zoo[@]}"
seeds=()
for variant in pwc pwc_disc hybrid hybrid_disc; do
  for seed in 1 2; do seeds+=("recipes/lite/$variant.yaml:seed=$seed"); done
done
bash tools/train_queue.sh "$runs/ablation" "${seeds[@]}" \
  recipes/lite/pwc_disc.yaml:model.options.adv_weight={0.03,0.3} \
  recipes/lite/hybrid_disc.yaml:model.options.adv_weight={0.03,0.1,0.3}
