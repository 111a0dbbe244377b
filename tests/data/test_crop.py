import numpy as np
import pytest

from flzoo.data.crop import (compose, crop_matrix, crop_square, invert, matrix_scale, transform_points,
                             warp)


def test_crop_square_box_and_centroid():
    pts = np.array([[10, 20], [50, 20], [10, 40], [20, 25]], dtype=np.float32)
    cx, cy, side = crop_square(pts)
    assert (cx, cy) == (30.0, 30.0) and side == pytest.approx(1.3 * 40)
    cx, cy, side = crop_square(pts, scale=1.0, centre="centroid")
    assert (cx, cy) == pytest.approx((22.5, 26.25)) and side == pytest.approx(40)
    with pytest.raises(ValueError, match="centre must be one of .*'middle'"):
        crop_square(pts, centre="middle")
    with pytest.raises(ValueError, match="zero size"):
        crop_square(np.ones((68, 2)))


def test_window_maps_onto_crop_pixel_area():
    m = crop_matrix(100.0, 50.0, 40.0, 128)
    corners = transform_points(m, np.array([[80.0, 30.0], [120.0, 70.0], [100.0, 50.0]]))
    np.testing.assert_allclose(corners, [[-0.5, -0.5], [127.5, 127.5], [63.5, 63.5]], atol=1e-9)
    flipped = transform_points(crop_matrix(100.0, 50.0, 40.0, 128, flip=True), np.array([[80.0, 30.0]]))
    np.testing.assert_allclose(flipped, [[127.5, -0.5]], atol=1e-9)
    # positive angle turns content counter-clockwise on screen: a point right of centre moves up
    up = transform_points(crop_matrix(100.0, 50.0, 40.0, 128, angle_deg=90), np.array([[110.0, 50.0]]))
    np.testing.assert_allclose(up, [[63.5, 63.5 - 32.0]], atol=1e-9)


def test_photo_crop_photo_is_exact_under_random_rotation_and_scale():
    """Float64 maths everywhere, so the round trip is exact far below 1e-4 px even on large photos; float32
    points (the pipeline's dtype) keep it on realistic photos (up to 1000 px)."""
    rng = np.random.default_rng(7)
    for trial in range(200):
        if trial % 2:
            pts = rng.uniform(0, 4000, (68, 2))
        else:
            pts = (rng.uniform(0, 120, (68, 2)) + rng.uniform(0, 880, 2)).astype(np.float32)
        cx, cy, side = crop_square(pts, centre=rng.choice(["box", "centroid"]))
        m = crop_matrix(cx, cy, side, int(rng.choice([64, 112, 128, 224])), angle_deg=rng.uniform(-30, 30),
                        scale=rng.uniform(0.6, 1.0), flip=bool(rng.integers(2)))
        crop = transform_points(m, pts)
        back = transform_points(invert(m), crop)
        assert crop.dtype == pts.dtype and back.dtype == pts.dtype
        assert np.abs(back.astype(np.float64) - pts).max() < 1e-4
        np.testing.assert_allclose(compose(invert(m), m), [[1, 0, 0], [0, 1, 0]], atol=1e-12)


def _blob_image(h, w, x0, y0, sigma):
    yy, xx = np.mgrid[0:h, 0:w]
    g = np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2))
    return np.repeat((g * 255).astype(np.uint8)[:, :, None], 3, axis=2)


def _centroid(image):
    g = image[:, :, 0].astype(np.float64)
    g = np.where(g > 8, g, 0)
    yy, xx = np.mgrid[0:g.shape[0], 0:g.shape[1]]
    return np.array([(g * xx).sum() / g.sum(), (g * yy).sum() / g.sum()])


@pytest.mark.parametrize("side, size", [(60.0, 128), (400.0, 64)])  # upsampling; strong area pre-shrink
def test_pixels_follow_the_points(side, size):
    """The crop's pixels and transform_points agree (pixel-centre convention, area pre-shrink included)."""
    rng = np.random.default_rng(1)
    h, w = 600, 500
    for _ in range(5):
        x0, y0 = 250.0 + rng.uniform(-0.2, 0.2, 2) * side  # well inside the window
        image = _blob_image(h, w, x0, y0, sigma=side / 12)
        m = crop_matrix(250.0, 250.0, side, size, angle_deg=rng.uniform(-30, 30), scale=rng.uniform(0.6, 1.0),
                        flip=bool(rng.integers(2)))
        crop = warp(image, m, size)
        assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
        expected = transform_points(m, np.array([[x0, y0]]))[0]
        assert np.abs(_centroid(crop) - expected).max() < 0.05  # a half-pixel slip gives 0.5


def test_warp_outside_photo_is_black_and_scale_is_reported():
    image = np.full((50, 50, 3), 200, np.uint8)
    m = crop_matrix(1000.0, 1000.0, 40.0, 32)
    assert warp(image, m, 32).max() == 0
    assert matrix_scale(crop_matrix(0, 0, 64.0, 128, scale=0.5)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="RGB uint8"):
        warp(image.astype(np.float32), m, 32)


def test_the_crop_protocol_is_the_training_crop_and_refuses_bad_fields():
    from flzoo.data.crop import CropProtocol

    pts = np.array([[10.0, 20.0], [50.0, 80.0], [30.0, 40.0]])
    protocol = CropProtocol()
    assert protocol.to_config() == {"scale": 1.3, "centre": "box"}
    np.testing.assert_array_equal(protocol.matrix(pts, 64), crop_matrix(*crop_square(pts), 64))
    assert protocol.updated({"centre": "centroid"}, "x") == CropProtocol(1.3, "centroid")
    assert protocol.updated(None, "x") is protocol
    for bad, why in [({"scale": 0}, "'scale' must be a number > 0"), ({"scale": True}, "'scale' must be"),
                     ({"centre": "middle"}, "'centre' must be one of 'box', 'centroid'"),
                     ({"size": 2}, "unknown key"), (1.3, "expected an object")]:
        with pytest.raises(ValueError, match=f"config.json: field 'crop': .*{why}"):
            protocol.updated(bad, "config.json: field 'crop'")


def test_training_writes_the_recipe_s_crop_into_the_model_config():
    """The crop a model was trained with travels with it: recipe keys data.crop_scale / data.crop_centre."""
    from flzoo.train.loop import crop_protocol
    from flzoo.train.recipe import resolve

    recipe = resolve({"model": {"variant": "pwc"}, "data": {"crop_scale": 1.5, "crop_centre": "centroid"}})
    assert crop_protocol(recipe).to_config() == {"scale": 1.5, "centre": "centroid"}
