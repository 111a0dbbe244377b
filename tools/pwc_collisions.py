"""How many landmarks lose their PWC label to a shared map cell, per face (see docs/data.md).

    python tools/pwc_collisions.py [--size 128] [--stride 4] [--scale 1.0] [--n 300]
"""

import argparse

import numpy as np

from flzoo.data.crop import crop_matrix, crop_square, transform_points
from flzoo.data.datasets import discover
from flzoo.data.crop import crop_to_map
from flzoo.data.targets import pwc_labels
from flzoo.paths import default_data_root


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128, help="model input size")
    parser.add_argument("--stride", type=int, default=4, help="output stride")
    parser.add_argument("--scale", type=float, default=1.0, help="augmentation face scale")
    parser.add_argument("--n", type=int, default=300, help="Helen training faces")
    args = parser.parse_args()
    faces = discover(default_data_root())["helen_train"][:args.n]
    lost = []
    for face in faces:
        cx, cy, side = crop_square(face.points)
        crop = transform_points(crop_matrix(cx, cy, side, args.size, scale=args.scale), face.points)
        labels = pwc_labels(crop_to_map(crop, args.stride), args.size // args.stride)
        lost.append(68 - len(np.unique(labels[labels > 0])))
    print(f"{len(faces)} faces, input {args.size}, stride {args.stride}, scale {args.scale}: "
          f"{np.mean(lost):.1f} labels lost per face (max {max(lost)})")


if __name__ == "__main__":
    main()
