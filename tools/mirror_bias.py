"""Systematic (signed) error of a ``flzoo eval`` results.json: where a model's points sit, on average, relative
to the annotations, in photo pixels and in NME units (outer-eye-corner distance).

    python tools/mirror_bias.py RESULTS.json [RESULTS.json ...] [--data PATH]

Why: a model trained with mirror augmentation cannot learn a horizontal offset of the annotations relative to the
image content (a mirrored face moves the offset to the other side), so such an offset shows up as a mean x error,
the same on every point; the points that are their own mirror image (chin, nose ridge, mouth centre line) show it
most cleanly. Prints, per subset: mean x / y error over all points and over the self-mirrored points, and the NME
with the subset's mean x error taken out (what a perfectly aligned annotation convention would give)."""

import argparse
import sys
from pathlib import Path

import numpy as np


def signed_errors(results, gt_by_image):
    """``{subset: (errors (N, 68, 2) photo px, eye distances (N,))}`` for the faces with points."""
    from flzoo.landmarks import OUTER_EYE_CORNERS

    by_subset = {}
    for face in results["faces"]:
        if face["points"] is None:
            continue
        gt = gt_by_image.get(face["image"])
        if gt is None:
            raise ValueError(f"{face['image']}: no annotation found under the data root")
        gt = np.asarray(gt, dtype=np.float64)
        error = np.asarray(face["points"], dtype=np.float64) - gt
        eyes = float(np.linalg.norm(gt[OUTER_EYE_CORNERS[0]] - gt[OUTER_EYE_CORNERS[1]]))
        by_subset.setdefault(face["subset"], []).append((error, eyes))
    return {s: (np.stack([e for e, _ in v]), np.array([d for _, d in v])) for s, v in by_subset.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+", help="results.json files (or folders holding them)")
    parser.add_argument("--data", type=Path, default=None, help="300-W family root")
    args = parser.parse_args(argv)

    from flzoo.landmarks import MIRROR
    from flzoo.data.datasets import points_by_image
    from flzoo.report import load_results
    from flzoo.paths import default_data_root

    self_mirrored = [i for i in range(68) if MIRROR[i] == i]
    print("| results | subset | faces | mean x err px (all / self-mirrored) | mean y err px | "
          "mean x err / eye dist | NME | NME, mean x err removed |")
    print("|---|---|---|---|---|---|---|---|")
    for path in args.results:
        try:
            results = load_results(path)
            root = args.data or Path(results.get("data") or default_data_root())
            gt = points_by_image(root)
            per_subset = signed_errors(results, gt)
        except ValueError as exc:
            sys.exit(f"mirror_bias: {exc}")
        for subset, (errors, eyes) in per_subset.items():
            mean_x = errors[..., 0].mean()
            nme = (np.linalg.norm(errors, axis=-1).mean(axis=1) / eyes).mean()
            unbiased = errors - np.array([mean_x, 0.0])
            nme_unbiased = (np.linalg.norm(unbiased, axis=-1).mean(axis=1) / eyes).mean()
            print(f"| {path} | {subset} | {len(eyes)} | {mean_x:+.2f} / {errors[:, self_mirrored, 0].mean():+.2f} | "
                  f"{errors[..., 1].mean():+.2f} | {(errors[..., 0].mean(axis=1) / eyes).mean():+.4f} | "
                  f"{nme:.4f} | {nme_unbiased:.4f} |")


if __name__ == "__main__":
    main()
