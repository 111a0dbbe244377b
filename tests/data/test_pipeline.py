import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from data_fakes import face_points
from flzoo.data import pipeline as pipeline_module
from flzoo.data.augment import AugmentConfig
from flzoo.data.crop import crop_matrix, crop_square, transform_points, warp
from flzoo.data.datasets import Face, load_image
from flzoo.data.pipeline import FaceBatches
from flzoo.data.crop import crop_to_map
from flzoo.data.targets import TargetSpec

NOSE = 30  # on the symmetry axis: keeps its index under the mirror


def _faces(folder, n=5):
    """Dark photos with one bright blob exactly at landmark 30, faces of varied size and place."""
    faces = []
    rng = np.random.default_rng(0)
    for i in range(n):
        h, w = 260 + 10 * i, 240
        size = rng.uniform(60, 110)
        pts = face_points(rng.uniform(100, 140), rng.uniform(110, 150), size, seed=i)
        yy, xx = np.mgrid[0:h, 0:w]
        blob = 250 * np.exp(-((xx - pts[NOSE, 0]) ** 2 + (yy - pts[NOSE, 1]) ** 2) / (2 * (size / 14) ** 2))
        image = np.repeat(blob.astype(np.uint8)[:, :, None], 3, axis=2)
        path = folder / f"{1000 + i}_1.png"
        cv2.imwrite(str(path), image)
        faces.append(Face(path, pts, "afw", f"afw/{1000 + i}"))
    return faces


@pytest.fixture
def faces(tmp_path):
    return _faces(tmp_path)


def _centroid(image):
    g = image[:, :, 0].astype(np.float64)
    g = np.where(g > 10, g, 0)
    yy, xx = np.mgrid[0:g.shape[0], 0:g.shape[1]]
    return np.array([(g * xx).sum() / g.sum(), (g * yy).sum() / g.sum()])


@pytest.mark.parametrize("kind, stride, map_shape, dtype", [
    ("points", 1, None, None), ("gaussian", 4, (16, 16, 68), np.float32),
    ("heatmap_reg", 2, (32, 32, 69), np.float32), ("pwc", 4, (16, 16), np.int32),
])
def test_batch_shapes_and_types(faces, kind, stride, map_shape, dtype):
    batches = FaceBatches(faces, 64, 2, TargetSpec(kind, stride, 1.0), AugmentConfig(), shuffle=True, seed=3)
    assert len(batches) == 3
    x, y = batches[2]  # the last, partial batch
    assert x.shape == (1, 64, 64, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 255
    assert y["points"].shape == (1, 68, 2) and y["points"].dtype == np.float32
    if map_shape is None:
        assert set(y) == {"points"}
    else:
        assert y["maps"].shape == (1,) + map_shape and y["maps"].dtype == dtype
    assert len(FaceBatches(faces, 64, 2, drop_remainder=True)) == 2


def test_pixels_and_points_agree_under_augmentation(faces):
    batches = FaceBatches(faces, 64, 5, TargetSpec("pwc", 1), AugmentConfig(flip=True), shuffle=True, seed=1)
    flips = 0
    for epoch in range(4):
        batches.set_epoch(epoch)
        x, y = batches[0]
        for j in range(len(x)):
            assert np.abs(_centroid(x[j]) - y["points"][j, NOSE]).max() < 0.3
            number = batches.order[j]
            flips += batches.params(number).flip
        labels = y["maps"]
        idx = np.floor(crop_to_map(y["points"][:, NOSE], 1) + 0.5).astype(int)
        inside = np.all((idx >= 0) & (idx < 64), axis=1)
        assert np.all(labels[np.arange(5)[inside], idx[inside, 1], idx[inside, 0]] == NOSE + 1)
    assert 0 < flips < 20


def _all_batches(batches):
    return [batches[i] for i in range(len(batches))]


def _same(a, b):
    return all(np.array_equal(xa, xb) and np.array_equal(ya["points"], yb["points"])
               for (xa, ya), (xb, yb) in zip(a, b))


def test_batches_are_a_pure_function_of_seed_epoch_and_index(faces):
    def make(seed=0):
        return FaceBatches(faces, 48, 2, TargetSpec("gaussian", 4, 1.0), AugmentConfig(flip=True, photometric=0.2),
                           shuffle=True, seed=seed)

    run = make()
    epoch0 = _all_batches(run)
    run.on_epoch_end()
    run.on_epoch_end()
    epoch2 = _all_batches(run)
    resumed = make()
    resumed.set_epoch(2)
    assert _same(_all_batches(resumed), epoch2)  # a resumed run sees the same data
    assert not _same(epoch0, epoch2)
    assert not _same(_all_batches(make(seed=1)), epoch0)
    for epoch in range(3):
        run.set_epoch(epoch)
        assert sorted(run.order.tolist()) == list(range(len(faces)))  # every face once per epoch
    # a face's augmentation does not depend on which batch it lands in
    small = FaceBatches(faces, 48, 1, augment=AugmentConfig(flip=True), shuffle=True, seed=0)
    big = FaceBatches(faces, 48, 5, augment=AugmentConfig(flip=True), shuffle=True, seed=0)
    for epoch in (0, 1):
        small.set_epoch(epoch)
        big.set_epoch(epoch)
        x_big, _ = big[0]
        for j, number in enumerate(big.order):
            position = int(np.flatnonzero(small.order == number)[0])
            np.testing.assert_array_equal(small[position][0][0], x_big[j])


def test_each_image_is_decoded_once(faces, monkeypatch):
    calls = []

    def counting_load(face):
        calls.append(face.image_path)
        return load_image(face)

    monkeypatch.setattr(pipeline_module, "load_image", counting_load)
    batches = FaceBatches(faces, 32, 2, augment=AugmentConfig(), shuffle=True)
    for epoch in range(3):
        batches.set_epoch(epoch)
        _all_batches(batches)
    assert sorted(calls) == sorted(f.image_path for f in faces)
    assert batches.cache_bytes > 0
    calls.clear()
    warmed = FaceBatches(faces, 32, 2, augment=AugmentConfig(), shuffle=True).warm_cache(threads=2)
    assert sorted(calls) == sorted(f.image_path for f in faces)
    warmed.set_epoch(1)
    batches.set_epoch(1)
    for (xa, _), (xb, _) in zip(_all_batches(warmed), _all_batches(batches)):
        np.testing.assert_array_equal(xa, xb)  # batches do not depend on how the cache was filled
    assert len(calls) == len(faces)


def test_cache_region_covers_any_augmentation(faces):
    """Crops warped from the cached region equal crops warped from the whole photo, even at the strongest
    augmentations: a smooth bright photo shows any part the cache missed as black."""
    from flzoo.data.crop import warp_region

    yy, xx = np.mgrid[0:400, 0:380]
    smooth = np.stack([100 + 0.3 * xx, 100 + 0.3 * yy, np.full_like(xx, 150.0)], axis=2).astype(np.uint8)
    faces = [Face(f.image_path, f.points + 60, f.subset, f.photo_id, image=smooth) for f in faces]
    batches = FaceBatches(faces, 64, 1, augment=AugmentConfig(rotation=30, scale=(0.6, 1.0)))
    for number, face in enumerate(faces):
        region, region_matrix = batches.region(number)
        for angle, scale in ((30.0, 0.6), (-30.0, 0.6), (15.0, 0.6), (-8.0, 1.0)):
            matrix = crop_matrix(*crop_square(face.points), 64, angle, scale)
            cached = warp_region(region, region_matrix, matrix, 64).astype(int)
            direct = warp(smooth, matrix, 64).astype(int)
            assert direct.min() >= 100 and np.abs(cached - direct).max() <= 2


def test_shift_moves_the_crop_centre_by_the_drawn_fraction_of_its_side(faces):
    batches = FaceBatches(faces, 64, 1, augment=AugmentConfig(rotation=0, scale=(1.0, 1.0), shift=0.1))
    for number, face in enumerate(faces):
        params = batches.params(number)
        cx, cy, side = crop_square(face.points)
        centre = transform_points(batches.matrix(number, params), np.array([[cx, cy]], dtype=np.float64))[0]
        # the photo's crop centre lands off the crop's middle by -shift sides (64 px per side)
        np.testing.assert_allclose(centre - 31.5, [-params.shift_x * 64, -params.shift_y * 64], atol=1e-9)
        assert params.shift_x != 0.0
    cover = FaceBatches(faces, 64, 1, augment=AugmentConfig(rotation=30, scale=(0.6, 1.15), shift=0.07))
    assert cover.augment.max_extent() > AugmentConfig(rotation=30, scale=(0.6, 1.15)).max_extent()


def test_plain_batches_match_the_evaluation_crop(faces):
    x, y = FaceBatches(faces, 64, 5)[0]
    for j, face in enumerate(faces):
        matrix = crop_matrix(*crop_square(face.points), 64)
        np.testing.assert_allclose(y["points"][j], (face.points @ matrix[:, :2].T + matrix[:, 2]), atol=1e-4)
        assert np.abs(x[j] - warp(load_image(face), matrix, 64)).mean() < 0.5


def test_bad_arguments_are_named(faces):
    with pytest.raises(ValueError, match="input size 50 is not a multiple of target.stride 4"):
        FaceBatches(faces, 50, 2, TargetSpec("pwc", 4))
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        FaceBatches(faces, 64, 0)
    with pytest.raises(ValueError, match="no faces"):
        FaceBatches([], 64, 2)
    with pytest.raises(IndexError):
        FaceBatches(faces, 64, 2)[3]


class _Recording(FaceBatches):
    """Logs the (epoch, index) of every batch Keras asks for."""

    def __getitem__(self, index):
        self.log.append((self.epoch, index))
        return super().__getitem__(index)


FIT_CODE = """
import json, numpy as np, keras
from flzoo.data import Face, TargetSpec, AugmentConfig
from test_pipeline import _Recording
faces = [Face(p, np.array(q, np.float32), "afw", p) for p, q in zip(PATHS, POINTS)]
batches = _Recording(faces, 32, 2, TargetSpec("heatmap_reg", 4, 1.0), AugmentConfig(), shuffle=True)
batches.log = []
inputs = keras.Input((32, 32, 3))
maps = keras.layers.Conv2D(69, 4, strides=4, name="maps")(inputs)
points = keras.layers.Reshape((68, 2))(keras.layers.Dense(136)(keras.layers.GlobalAveragePooling2D()(inputs)))
model = keras.Model(inputs, {"points": points, "maps": maps})
model.compile(optimizer="sgd", loss={"points": "mse", "maps": "mse"})
history = model.fit(batches, epochs=3, initial_epoch=1, verbose=0, callbacks=[batches.epoch_callback()])
print(json.dumps({"backend": keras.backend.backend(), "loss": history.history["loss"], "log": batches.log}))
"""


def _check_fit(result, n_batches):
    assert np.isfinite(result["loss"]).all() and len(result["loss"]) == 2
    # every batch of epoch e was made with epoch e's draws (resumed at initial_epoch=1); TensorFlow first
    # peeks at a few batches to learn the tensor specs, which do not reach training
    training = [tuple(entry) for entry in result["log"][-2 * n_batches:]]
    assert sorted(training) == sorted((e, i) for e in (1, 2) for i in range(n_batches))


def test_fit_sees_the_epochs_keras_counts(faces):
    import keras

    namespace = {"PATHS": [str(f.image_path) for f in faces[:3]], "POINTS": [f.points.tolist() for f in faces[:3]]}
    printed = []
    namespace["print"] = printed.append
    exec(FIT_CODE, namespace)
    result = json.loads(printed[-1])
    assert result["backend"] == keras.backend.backend()
    _check_fit(result, 2)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_fit_on_other_backends(tmp_path, on_backend, backend):
    faces = _faces(tmp_path, n=3)
    setup = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
             f"PATHS = {[str(f.image_path) for f in faces]!r}\nPOINTS = {[f.points.tolist() for f in faces]!r}\n")
    result = on_backend(backend, setup + FIT_CODE)
    assert result["backend"] == backend
    _check_fit(result, 2)
