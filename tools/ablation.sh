#!/usr/bin/env bash
# The ablation of issue 18 from the committed run records (no model is run): per configuration mean +/- std over
# seeds, and the paired face-by-face comparisons with bootstrap intervals -> docs/ablation/mnv2/aggregate.md.
# Seed 0 of each configuration is the bundled model's run (docs/runs/<variant>.mnv2); the other seeds and the
# adversarial-weight sweep are docs/ablation/runs/* (tools/queue_all.sh trains them, tools/record_run.py records them).
#   bash tools/ablation.sh [OUT]   (OUT: docs/ablation/mnv2 unless given)
set -eu
cd "$(dirname "$0")/.."
shopt -s nullglob
pairs=(--paired pwc.mnv2,pwc_disc.mnv2 --paired pwc.mnv2,hybrid.mnv2 --paired hybrid.mnv2,hybrid_disc.mnv2
       --paired pwc_disc.mnv2,hybrid_disc.mnv2)
# a +disc loss seeded at the weight its sweep picked (<variant>.mnv2_adv<w>_seed<N>, tools/queue_all.sh): against
# its loss without the discriminator, and against itself at 0.1
for seeded in docs/ablation/runs/*_disc.mnv2_adv*_seed2; do
  config="$(basename "${seeded%_seed2}")"  # e.g. pwc_disc.mnv2_adv0.03
  pairs+=(--paired "${config%%_disc*}.mnv2,$config" --paired "${config%_adv*},$config")
done
flzoo compare docs/runs/{pwc,pwc_disc,hybrid,hybrid_disc}.mnv2/eval_gt docs/ablation/runs/*/eval_gt \
  -o "${1:-docs/ablation/mnv2}" "${pairs[@]}" --paper
