"""Compute flzoo/assets/mean_shape_68.json: the mean 68-point shape of the 300-W TRAINING faces.

Each face is put in the crop frame of the crop protocol (``flzoo.data.crop_square``: a square of side
1.3 x max(landmark-box width, height) centred on the landmark-box midpoint) and scaled to the unit square:
u = (p - square_origin) / side, so the square's outer edges are u = 0 and u = 1. A network of input size S places
the shape at ``u * S - 0.5`` pixels (pixel centres at integer coordinates, so the square's edges fall at -0.5 and
S - 0.5). The faces come from ``flzoo.data.discover`` (which reads the 1-based ``.pts`` files through
``flzoo.data.read_pts``), training subsets only (``TRAIN_SUBSETS``).

Usage: python tools/make_mean_shape.py [--root ../shared/data/300w] [--out flzoo/assets/mean_shape_68.json]
"""

import argparse
import json
from pathlib import Path

import numpy as np

from flzoo.data import TRAIN_SUBSETS, crop_square, discover

REPO = Path(__file__).resolve().parent.parent
CROP_SCALE = 1.3


def unit_crop_points(points, scale=CROP_SCALE):
    """Points in the unit square of the face's crop square (box-centred, side = scale * larger box side)."""
    cx, cy, side = crop_square(points, scale=scale)
    return (np.asarray(points, dtype=np.float64) - (np.array([cx, cy]) - side / 2.0)) / side


def mean_shape(root):
    faces = discover(root)
    counts = {subset: len(faces.get(subset, [])) for subset in TRAIN_SUBSETS}
    shapes = [unit_crop_points(face.points) for subset in TRAIN_SUBSETS for face in faces.get(subset, [])]
    if not shapes:
        raise ValueError(f"{root}: no training faces ({', '.join(TRAIN_SUBSETS)}) found (see docs/data.md)")
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
