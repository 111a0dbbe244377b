"""docs/comparison: the bundled models in the paper's Table 2 layout, from their committed evaluation records
(Helen test, ground-truth crops, the network alone), with the paper's figures and dlib's (``flzoo compare
--paper``). No model is run.

    python tools/comparison.py

-> docs/comparison/ (the best bundled model of each variant: what a bare variant name loads) and
docs/comparison/lite/ (the lite models), each with comparison.md, ced_68.png and ced_eyes.png. A model's record
is the run folder its config.json names (``training.run``, written by tools/bundle_run.py)."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from flzoo import registry  # noqa: E402
from flzoo.models import VARIANTS  # noqa: E402
from flzoo.report import load_results, write_comparison  # noqa: E402


def record(name):
    """``(path, results)`` of a bundled model's Helen evaluation from ground-truth crops, labelled by its name."""
    config = registry.bundled_config(name)
    path = REPO / config["training"]["run"] / "eval_gt" / "results.json"
    results = load_results(path)
    results["model"] = name  # the column's label: the registry name, not the folder it was evaluated from
    results["variant"] = config["build"]["variant"]  # records older than flzoo eval's "variant" field lack it
    return str(path.relative_to(REPO)), results


def main():
    best = registry.index()["best"]
    tables = {"comparison": [best[v] for v in VARIANTS],
              "comparison/lite": [f"{v}.lite" for v in VARIANTS]}
    for folder, names in tables.items():
        out = REPO / "docs" / folder
        write_comparison([record(n) for n in names], out, paper=True)
        print(f"{', '.join(names)} -> {out.relative_to(REPO)}/comparison.md, ced_68.png, ced_eyes.png")


if __name__ == "__main__":
    sys.exit(main())
