#!/usr/bin/env bash
# Every long training run still to do, in order, resumable (tools/train_queue.sh). Start it at the beginning of
# each session; finished runs are skipped:
#   nohup bash tools/queue_all.sh ../flzoo-runs >> ../flzoo-runs/queue.log 2>&1 &
# 1. the zoo on MobileNetV2 (issue 14; docs/training.md "Pilots"), 2. the ablation's seeds and adversarial-weight
# sweep (issue 18, docs/ablation/README.md) on MobileNetV2, the zoo's backbone: seed 0 of each configuration is
# the bundled model's run (docs/runs/<variant>.mnv2), seeds 1 and 2 run here as <variant>.mnv2_seed<N>.
set -u
cd "$(dirname "$0")/.."
runs="${1:?usage: tools/queue_all.sh RUNS_DIR}"
# A zoo run whose model is bundled (flzoo/presets/<variant>.mnv2) is done even when its runs folder is gone.
zoo=()
for variant in hybrid hybrid_disc pwc pwc_disc distribution heatmap_reg direct; do
  [ -d "flzoo/presets/$variant.mnv2" ] || zoo+=("recipes/mnv2/$variant.yaml")
done
bash tools/train_queue.sh "$runs/zoo" "${zoo[@]}"
# An ablation run whose record is committed (docs/ablation/runs/<name>) is done too.
ablation=()
add() { [ -d "docs/ablation/runs/${1##*name=}" ] || ablation+=("$1"); }
# seed by seed, so that every loss has three seeds (0 is the bundled model's run) before anything else: the +disc
# losses at 0.1, the bundled runs' weight and the one validation chose for the lite pwc_disc; then the weight sweep
# of both +disc losses at seed 0 (hybrid_disc at 1 collapsed: docs/runs/pilots/hybrid_disc_mnv2_adv1_stopped)
for seed in 1 2; do
  for variant in pwc hybrid pwc_disc hybrid_disc; do
    add "recipes/mnv2/$variant.yaml:seed=$seed,name=$variant.mnv2_seed$seed"
  done
done
sweep=(pwc_disc:0.03 hybrid_disc:0.03 pwc_disc:0.3 hybrid_disc:0.3 pwc_disc:1)
for entry in "${sweep[@]}"; do
  variant="${entry%%:*}" weight="${entry#*:}"
  add "recipes/mnv2/$variant.yaml:model.options.adv_weight=$weight,name=$variant.mnv2_adv$weight"
done
bash tools/train_queue.sh "$runs/ablation" "${ablation[@]}"
# then seeds 1 and 2 at the weight the sweep's validation NME picks (tools/sweep_choice.py, once every weight of
# the loss has finished), where that is not 0.1, whose seeds ran above; a committed record stands in for its run
ablation=()
record() { if [ -d "docs/ablation/runs/$1" ]; then echo "docs/ablation/runs/$1"; else echo "$runs/ablation/$1"; fi; }
for variant in pwc_disc hybrid_disc; do
  folders=("docs/runs/$variant.mnv2")
  for entry in "${sweep[@]}"; do
    [ "${entry%%:*}" = "$variant" ] && folders+=("$(record "$variant.mnv2_adv${entry#*:}")")
  done
  weight="$(python tools/sweep_choice.py "${folders[@]}")" || continue
  [ "$weight" = 0.1 ] && continue
  for seed in 1 2; do
    add "recipes/mnv2/$variant.yaml:model.options.adv_weight=$weight,seed=$seed,name=$variant.mnv2_adv${weight}_seed$seed"
  done
done
bash tools/train_queue.sh "$runs/ablation" "${ablation[@]}"
