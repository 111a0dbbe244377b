"""Compute flzoo/assets/mean_shape_68.json: the mean 68-point shape of the 300-W TRAINING faces.

Each face is put in the crop frame of the crop protocol (a square of side 1.3 x max(landmark-box width, height)
centred on the landmark-box midpoint) and scaled to the unit square: u = (p - square_origin) / side, so the
square's outer edges are u = 0 and u = 1. A network of input size S places the shape at ``u * S - 0.5`` pixels
(pixel centres at integer coordinates, so the square's edges fall at -0.5 and S - 0.5).

Usage: python tools/make_mean_shape.py [--root ../shared/data/300w] [--out flzoo/assets/mean_shape_68.json]
"""

import argparse
import json
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
# The paper's training subsets, in the official 300-W layout.
TRAIN_FOLDERS = {"afw": "afw", "helen_train": "helen/trainset", "lfpw_train": "lfpw/trainset"}
CROP_SCALE = 1.3


def read_pts(path):
    """iBUG .pts -> (68, 2) float64, 0-based (the files are 1-based)."""
    lines = Path(path).read_text().splitlines()
    try:
        start = lines.index("{") + 1
        end = lines.index("}", start)
    except ValueError:
        raise ValueError(f"{path}: expected '{{' and '}}' around the point lines of an iBUG .pts file") from None
    points = np.array([[float(v) for v in line.split()] for line in lines[start:end]], dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"{path}: expected 68 points of (x, y), found shape {points.shape}")
    return points - 1.0


def unit_crop_points(points, scale=CROP_SCALE):
    """Points in the unit square of the face's crop square (box-centred, side = scale * larger box side)."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    centre = (lo + hi) / 2.0
    side = scale * float(np.max(hi - lo))
    return (points - (centre - side / 2.0)) / side


def mean_shape(root):
    root = Path(root)
    shapes, counts = [], {}
    for subset, folder in TRAIN_FOLDERS.items():
        files = sorted((root / folder).glob("*.pts"))
        counts[subset] = len(files)
        shapes += [unit_crop_points(read_pts(f)) for f in files]
    if not shapes:
        raise ValueError(f"{root}: no .pts files under {', '.join(TRAIN_FOLDERS.values())}")
    return np.mean(shapes, axis=0), counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data" / "300w"))
    parser.add_argument("--out", default=str(REPO / "flzoo" / "assets" / "mean_shape_68.json"))
    args = parser.parse_args()
    shape, counts = mean_shape(args.root)
    doc = {
        "description": "Mean 68-point shape of the 300-W training faces in the unit crop square",
        "frame": "unit square of the crop protocol (side 1.3 x max landmark-box side, centred on the box "
                 "midpoint); input pixels of a size-S crop = u * S - 0.5",
        "crop_scale": CROP_SCALE,
        "faces": counts,
        "points": [[round(float(x), 6), round(float(y), 6)] for x, y in shape],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out} from {sum(counts.values())} faces {counts}")


if __name__ == "__main__":
    main()
