import numpy as np
import pytest

from flzoo.data.crop import centred_to_crop, crop_to_centred, crop_to_map, map_to_crop, unit_to_crop
from flzoo.data.targets import TargetSpec, gaussian_maps, heatmap_reg_maps, pwc_labels


def _points(size, seed=0):
    """68 distinct sub-pixel points inside a ``size`` map, at least 2 px apart."""
    rng = np.random.default_rng(seed)
    cells = rng.choice((size // 2) ** 2, 68, replace=False)
    return np.stack([cells % (size // 2) * 2, cells // (size // 2) * 2], 1) + rng.uniform(-0.45, 0.45, (68, 2))


def _peaks(maps):
    h, w, c = maps.shape
    flat = maps.reshape(h * w, c).argmax(axis=0)
    return np.stack([flat % w, flat // w], 1)


@pytest.mark.parametrize("size", [28, 56])
def test_gaussian_peak_sits_on_its_landmark(size):
    pts = _points(size)
    for normalise in (False, True):
        maps = gaussian_maps(pts, size, sigma=1.5, normalise=normalise)
        assert maps.shape == (size, size, 68) and maps.dtype == np.float32
        np.testing.assert_array_equal(_peaks(maps), np.floor(pts + 0.5))
    np.testing.assert_allclose(gaussian_maps(pts, size, 1.5, normalise=True).sum(axis=(0, 1)), 1.0, rtol=1e-5)
    exact = gaussian_maps(np.full((68, 2), 5.0), size, 2.0)
    assert exact[5, 5, 0] == pytest.approx(1.0) and exact[5, 7, 0] == pytest.approx(np.exp(-0.5))


def test_normalised_gaussian_of_a_point_off_the_map_is_empty():
    pts = _points(32)
    pts[3] = [40.0, 10.0]
    maps = gaussian_maps(pts, 32, 2.0, normalise=True)
    assert maps[:, :, 3].max() == 0 and maps[:, :, 4].sum() == pytest.approx(1.0, rel=1e-5)


def test_heatmap_reg_has_background_first_and_peaks_on_landmarks():
    pts = _points(32, seed=1)
    maps = heatmap_reg_maps(pts, 32, 1.0)
    assert maps.shape == (32, 32, 69)
    np.testing.assert_array_equal(_peaks(maps[:, :, 1:]), np.floor(pts + 0.5))
    idx = np.floor(pts + 0.5).astype(int)
    assert maps[idx[:, 1], idx[:, 0], 0].max() < 0.5  # background low at landmarks
    np.testing.assert_allclose(maps[:, :, 0], 1 - maps[:, :, 1:].max(axis=-1))


def test_pwc_labels_mark_each_landmark_pixel():
    pts = _points(32, seed=2)
    labels = pwc_labels(pts, 32)
    assert labels.dtype == np.int32 and labels.shape == (32, 32)
    idx = np.floor(pts + 0.5).astype(int)
    np.testing.assert_array_equal(labels[idx[:, 1], idx[:, 0]], np.arange(1, 69))
    assert np.count_nonzero(labels) == 68


def test_pwc_collisions_and_points_outside():
    pts = _points(32, seed=3)
    pts[10] = [5.3, 5.0]
    pts[20] = [4.9, 5.1]   # same pixel (5, 5), nearer its centre: wins
    pts[30] = [-0.6, 3.0]  # outside: dropped
    pts[31] = [31.4, 31.4]  # last pixel: kept
    labels = pwc_labels(pts, 32)
    assert labels[5, 5] == 21 and 11 not in labels and 31 not in labels and labels[31, 31] == 32
    assert np.count_nonzero(labels) == 66


def test_frames_and_normalised_coordinates():
    crop = np.array([[1.5, 5.5], [-0.5, 127.5]])
    np.testing.assert_allclose(crop_to_map(crop, 4), [[0.0, 1.0], [-0.5, 31.5]])
    np.testing.assert_allclose(map_to_crop(crop_to_map(crop, 4), 4), crop)
    # the crop square's edges (-0.5 and S - 0.5 px) are -0.5 and 0.5 centred, 0 and 1 in the unit frame
    np.testing.assert_allclose(crop_to_centred(crop, 128), [[2 / 128 - 0.5, 6 / 128 - 0.5], [-0.5, 0.5]])
    np.testing.assert_allclose(centred_to_crop(crop_to_centred(crop, 128), 128), crop)
    np.testing.assert_allclose(unit_to_crop(crop_to_centred(crop, 128) + 0.5, 128), crop)


def test_target_spec_validation():
    assert TargetSpec("pwc", 4, 1.0).map_size(128) == 32
    with pytest.raises(ValueError, match="target.kind must be one of"):
        TargetSpec("heatmap")
    with pytest.raises(ValueError, match="target.stride must be a positive integer, got 0"):
        TargetSpec("pwc", 0)
    with pytest.raises(ValueError, match="target.sigma must be > 0"):
        TargetSpec("gaussian", 1, 0.0)
    with pytest.raises(ValueError, match="input size 100 is not a multiple of target.stride 8"):
        TargetSpec("pwc", 8).map_size(100)
