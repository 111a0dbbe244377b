"""Shared by tests/test_evaluate.py and tests/commands/test_eval_cli.py: a tiny on-disk 300-W layout and a deterministic
Landmarker double whose every NME is hand-computable."""

import math
from pathlib import Path

import numpy as np
import pytest

from flzoo.data.crop import transform_points
from flzoo.data.pts import write_pts


def face_points(seed, interocular=40.0):
    """68 points inside [30, 110]^2 with the outer eye corners exactly ``interocular`` apart."""
    pts = np.random.default_rng(seed).uniform(30, 110, size=(68, 2))
    pts[36] = (40.0, 60.0)
    pts[45] = (40.0 + interocular, 60.0)
    return pts.astype(np.float32)


# ------------------------------------------------------------------------------------- a test double model


class ShapeKeyedLandmarker:
    """A deterministic Landmarker double. Each test image has a unique (height, width), which tells the double
    which face it is: it answers ground truth + a known offset, so every NME is hand-computable.

    ``predict_with_matrices`` also checks that the matrix is the ground-truth crop (the landmark box fills
    1/1.3 of the crop), so a wrong crop protocol fails the test."""

    input_size = 64

    def __init__(self, faces, offsets, missed=(), detector_offset=None):
        self.gt = {self._key(f): np.asarray(f.points, np.float64) for f in faces}
        self.offsets = {self._key(f): np.asarray(o, np.float64) for f, o in zip(faces, offsets)}
        self.missed = {self._key(faces[i]) for i in missed}
        self.detector_offset = detector_offset
        self.calls = {"predict": 0, "predict_with_matrices": 0}

    @staticmethod
    def _key(face):
        from flzoo.data.datasets import load_image

        return load_image(face).shape[:2]

    def predict_with_matrices(self, images, matrices):
        self.calls["predict_with_matrices"] += 1
        out = []
        for image, m in zip(images, matrices):
            gt = self.gt[image.shape[:2]]
            crop = transform_points(m, gt)
            extent = (crop.max(0) - crop.min(0)).max()
            assert extent == pytest.approx(self.input_size / 1.3, rel=1e-6)
            assert crop.min() > -0.5 and crop.max() < self.input_size - 0.5
            out.append(gt + self.offsets[image.shape[:2]])
        return np.stack(out).astype(np.float32)

    def predict(self, images):
        self.calls["predict"] += 1
        result = []
        for image in images:
            key = image.shape[:2]
            gt = self.gt[key]
            lo, hi = gt.min(0), gt.max(0)
            h, w = key
            # a spurious small detection in a corner of every image, with useless points
            faces = [{"box": [0.0, 0.0, 10.0, 10.0], "points": np.zeros((68, 2)), "score": 0.99}]
            if key not in self.missed:
                offset = self.offsets[key] if self.detector_offset is None else self.detector_offset
                faces.append({"box": [lo[0] + 2, lo[1] + 8, hi[0] - 2, hi[1] + 2], "points": gt + offset,
                              "score": 0.8})
            result.append(faces)
        return result


# Three faces on disk: offsets giving NMEs 0.125 (eyes 0.125), 0 (0), and 24/68/40 (eyes 0.05).
def eye_offset():
    o = np.zeros((68, 2))
    o[36:48, 1] = 2.0
    return o


OFFSETS = [np.tile([3.0, 4.0], (68, 1)), np.zeros((68, 2)), eye_offset()]
NMES = [0.125, 0.0, 24 / 68 / 40]
NMES_EYES = [0.125, 0.0, 0.05]


def make_dataset(root: Path):
    """helen/testset with two faces and lfpw/testset with one; each image has a unique size."""
    import cv2

    layout = [("helen", "testset", "1001_1"), ("helen", "testset", "1001_2"), ("lfpw", "testset", "image_0001")]
    for i, (ds, part, stem) in enumerate(layout):
        folder = root / ds / part
        folder.mkdir(parents=True, exist_ok=True)
        image = np.full((150 + i, 160 + 3 * i, 3), 90 + 40 * i, np.uint8)
        cv2.imwrite(str(folder / f"{stem}.jpg"), image)
        write_pts(folder / f"{stem}.pts", face_points(10 + i))
    return root


def read_pts_independently(path):
    """A second .pts reader (not flzoo's): the 68 lines between braces, 1-based -> 0-based."""
    lines = Path(path).read_text().splitlines()
    body = lines[lines.index("{") + 1: lines.index("}")]
    return [(float(a) - 1, float(b) - 1) for a, b in (ln.split() for ln in body)]


def rescore(points, gt, indices=range(68)):
    """Independent NME: plain Python distances, normalised by the outer eye corners."""
    norm = math.dist(gt[36], gt[45])
    return sum(math.dist(points[i], gt[i]) for i in indices) / len(indices) / norm
