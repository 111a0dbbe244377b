"""The 300-W data layer: files, faces, crops, augmentation, targets and batches.

Everything here is numpy / OpenCV; ``FaceBatches`` (``flzoo.data.pipeline``) imports Keras. The names below are
loaded from their modules when first asked for, so importing one module (``flzoo.data.crop`` for the weights'
config) does not load the others."""

import importlib

_HOMES = {
    "flzoo.data.augment": ["AugmentConfig", "AugmentParams"],
    "flzoo.data.crop": ["crop_matrix", "crop_square", "invert", "transform_points", "warp"],
    "flzoo.data.datasets": ["SUBSETS", "TEST_SUBSETS", "TRAIN_SUBSETS", "Face", "discover", "load_image",
                            "split_train_val"],
    "flzoo.data.pts": ["read_pts", "write_pts"],
    "flzoo.data.targets": ["TargetSpec"],
    "flzoo.data.pipeline": ["FaceBatches"],
    "flzoo.landmarks": ["MIRROR"],
}
_HOME = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name):
    if name not in _HOME:
        raise AttributeError(f"module 'flzoo.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name]), name)


def __dir__():
    return sorted(list(globals()) + list(_HOME))


__all__ = list(_HOME)
