"""The 300-W data layer: files, faces, crops, augmentation, targets and batches.

Everything here is numpy / OpenCV; ``FaceBatches`` (``flzoo.data.pipeline``) imports Keras, so it is loaded
only when asked for."""

from flzoo.data.augment import AugmentConfig, AugmentParams
from flzoo.data.crop import crop_matrix, crop_square, invert, transform_points, warp
from flzoo.data.datasets import (SUBSETS, TEST_SUBSETS, TRAIN_SUBSETS, Face, discover, load_image,
                                 split_train_val)
from flzoo.data.pts import read_pts, write_pts
from flzoo.data.targets import TargetSpec
from flzoo.landmarks import MIRROR


def __getattr__(name):
    if name == "FaceBatches":
        from flzoo.data.pipeline import FaceBatches

        return FaceBatches
    raise AttributeError(f"module 'flzoo.data' has no attribute {name!r}")


__all__ = ["MIRROR", "AugmentConfig", "AugmentParams", "crop_matrix", "crop_square", "invert",
           "transform_points", "warp", "SUBSETS", "TEST_SUBSETS", "TRAIN_SUBSETS", "Face", "discover",
           "load_image", "split_train_val", "read_pts", "write_pts", "TargetSpec", "FaceBatches"]
