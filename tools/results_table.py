"""The README's results table, from the Helen-test figures recorded in each bundled model's config.json
(written by tools/bundle_run.py, re-checked against a fresh `flzoo eval` by tests/test_bundled.py).

    python tools/results_table.py

One row per bundled model (``<variant>.<tag>``, in variant order). Columns: GT crops = the paper's protocol; AUC
and failure rate at NME 0.08; dlib boxes; the paper's Table 2 figure for the same variant (VGG19-FCN, 224 px,
3,148 training faces; flzoo.reference)."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from flzoo import registry  # noqa: E402
from flzoo.reference import PAPER_NME  # noqa: E402


def main():
    print("| model | steps (best) | Helen NME, GT crops | AUC@0.08 | FR@0.08 | Helen NME, dlib boxes | paper, Helen NME |")
    print("|---|---|---|---|---|---|---|")
    for name, entry in registry.table().items():
        if entry.hub_repo:
            continue
        m = registry.bundled_config(name)["metrics"]
        print(f"| {name} | {m['step']:,} | {m['nme']:.4f} | {m['auc']:.3f} | {100 * m['fr']:.1f}% | "
              f"{m['nme_detector']:.4f} | {PAPER_NME['helen_test'][entry.variant]:.4f} |")


if __name__ == "__main__":
    sys.exit(main())
