"""Re-score a ``flzoo eval`` results.json against the ground truth on disk, without running the model.

    python tools/rescore.py RESULTS.json [--data PATH] [--threshold 0.08]

Checks that each stored per-face NME matches its stored points and the annotation file (prints the largest
difference; exit status 1 above 1e-6), and prints the summary recomputed at ``--threshold`` (e.g. 0.10 to
compare with papers that report AUC@0.1). Faces are matched by image path: the annotations are read from
``--data`` (default: the results' ``data`` field, else $FLZOO_300W or ../shared/data/300w)."""

import argparse
import sys
from pathlib import Path

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="results.json (or the folder holding it)")
    parser.add_argument("--data", type=Path, default=None, help="300-W family root")
    parser.add_argument("--threshold", type=float, default=0.08, help="AUC / failure-rate threshold")
    args = parser.parse_args(argv)

    from flzoo.data.datasets import points_by_image
    from flzoo.landmarks import EYE_ANCHORS
    from flzoo.metrics import nme, occlusion_split, summarize_records
    from flzoo.report import load_results, render_table
    from flzoo.paths import default_data_root

    try:
        results = load_results(args.results)
        root = args.data or Path(results.get("data") or default_data_root())
        gt = points_by_image(root)
    except ValueError as exc:
        sys.exit(f"rescore: {exc}")
    worst, missing = 0.0, []
    for face in results["faces"]:
        if face["points"] is None:
            continue
        points = gt.get(face["image"])
        if points is None:
            missing.append(face["image"])
            continue
        pred = np.asarray(face["points"], dtype=np.float64)
        again, again_eyes = nme(pred, points), nme(pred, points, EYE_ANCHORS)
        worst = max(worst, abs(again - face["nme"]), abs(again_eyes - face["nme_eyes"]))
        face["nme"], face["nme_eyes"] = again, again_eyes  # the summary below uses the recomputed values
    if missing:
        sys.exit(f"rescore: {len(missing)} faces of {args.results} are not under --data {root} "
                 f"(first: {missing[0]}); pass the --data folder the evaluation used")
    subsets = [s for s in results["summary"] if s != "total"]
    summary = summarize_records(results["faces"], subsets, threshold=args.threshold)
    rescored = dict(results, summary=summary, **occlusion_split(results["faces"], args.threshold))
    print(render_table(rescored, threshold=args.threshold))
    print(f"largest |stored NME - recomputed NME| over {len(results['faces'])} faces: {worst:.2e}")
    return 1 if worst > 1e-6 else 0


if __name__ == "__main__":
    sys.exit(main())
