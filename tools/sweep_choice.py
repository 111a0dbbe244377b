"""The adversarial weight an ablation sweep picks: of the given run folders (one loss, one seed, one weight each:
their recipe.yaml's model.options.adv_weight), the weight whose run has the lowest best validation NME (its
metrics.json). Helen test plays no part. Every run given must have finished: a weight is chosen only among
finished runs (tools/queue_all.sh gives it the weights of a whole sweep).

    python tools/sweep_choice.py docs/runs/pwc_disc.mnv2 docs/ablation/runs/pwc_disc.mnv2_adv{0.03,0.3,1}

Prints each weight's validation NME to stderr and the chosen weight to stdout (what tools/queue_all.sh reads);
exits 1 naming the run that is missing or unfinished.
"""

import argparse
import sys
from pathlib import Path

import yaml

from flzoo.aggregate import run_metrics


def sweep(runs):
    """``{weight: best validation NME}`` of the run folders, or ValueError naming one that is not a finished run."""
    scores = {}
    for run in runs:
        metrics = run_metrics(run)
        if not metrics or not metrics.get("finished") or metrics.get("best_val_nme") is None:
            raise ValueError(f"{run}: not finished (no metrics.json with 'finished' and 'best_val_nme')")
        try:
            weight = yaml.safe_load((run / "recipe.yaml").read_text())["model"]["options"]["adv_weight"]
        except (OSError, yaml.YAMLError, KeyError, TypeError):
            raise ValueError(f"{run}/recipe.yaml: no model.options.adv_weight (not a +disc run)") from None
        scores[weight] = metrics["best_val_nme"]
    return scores


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    try:
        scores = sweep(args.runs)
    except ValueError as err:
        sys.exit(str(err))
    for weight, nme in sorted(scores.items()):
        print(f"adv_weight {weight:g}: validation NME {nme:.4f}", file=sys.stderr)
    print(f"{min(scores, key=scores.get):g}")


if __name__ == "__main__":
    main()
