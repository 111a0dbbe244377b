import numpy as np
import pytest

from flzoo.data.crop import crop_to_map
from flzoo.data.targets import gaussian_maps


def _np(x):
    return np.asarray(x)


def _gaussians(rng, n=4, size=16, sigma=1.5, margin=2.0):
    """Peak-1 Gaussian maps (n, size, size, 68) with peaks at random sub-pixel map positions."""
    peaks = rng.uniform(margin, size - 1 - margin, (n, 68, 2))
    maps = np.stack([gaussian_maps(p, size, sigma) for p in peaks])
    return maps.astype(np.float32), peaks


@pytest.mark.parametrize("sigma", [1.0, 1.5, 3.0])
def test_subpixel_decoding_recovers_gaussian_peaks(sigma):
    from flzoo.models.decoding import decode_subpixel

    rng = np.random.default_rng(1)
    maps, peaks = _gaussians(rng, sigma=sigma)
    err = np.linalg.norm(_np(decode_subpixel(maps, stride=1)) - peaks, axis=-1)
    assert err.max() < 0.1, err.max()


def test_decoders_return_input_pixels_at_stride():
    """map = (crop + 0.5) / s - 0.5: decoding at stride 4 returns crop pixels, within 0.1 map px * 4."""
    from flzoo.data.crop import map_to_crop
    from flzoo.models.decoding import decode_argmax, decode_subpixel, soft_argmax

    rng = np.random.default_rng(2)
    maps, peaks = _gaussians(rng, sigma=1.2)
    crop = map_to_crop(peaks, 4)
    np.testing.assert_allclose(crop_to_map(crop, 4), peaks, atol=1e-9)  # both frame helpers agree
    assert np.abs(_np(decode_subpixel(maps, stride=4)) - crop).max() < 0.4
    assert np.abs(_np(soft_argmax(maps, stride=4, radius=3)) - crop).max() < 0.4
    argmax = _np(decode_argmax(maps, stride=4))
    np.testing.assert_allclose(argmax, map_to_crop(np.round(peaks), 4), atol=1e-5)  # whole cells
    assert np.abs(argmax - crop).max() > 0.5  # so the sub-pixel tests above are not trivial


def test_argmax_is_the_paper_decoding_and_subpixel_beats_it():
    from flzoo.models.decoding import decode_argmax, decode_subpixel

    rng = np.random.default_rng(3)
    maps, peaks = _gaussians(rng, n=8, sigma=2.0)
    e_arg = np.linalg.norm(_np(decode_argmax(maps)) - peaks, axis=-1).mean()
    e_sub = np.linalg.norm(_np(decode_subpixel(maps)) - peaks, axis=-1).mean()
    assert 0.2 < e_arg < 0.6  # uniform sub-pixel offsets: about 0.38 px on average
    assert e_sub < 0.01


def test_subpixel_at_the_border_and_on_flat_maps_stays_finite():
    from flzoo.models.decoding import decode_subpixel, soft_argmax

    maps = np.zeros((1, 8, 8, 68), np.float32)
    maps[0, 0, 7, :] = 1.0  # peak in the top-right corner cell
    out = _np(decode_subpixel(maps))
    np.testing.assert_allclose(out[0], np.tile([[7.0, 0.0]], (68, 1)), atol=1e-5)
    flat = np.ones((1, 8, 8, 68), np.float32)
    assert np.isfinite(_np(decode_subpixel(flat))).all()
    np.testing.assert_allclose(_np(soft_argmax(flat)), 3.5, atol=1e-5)  # global expectation: the centre
    local = _np(soft_argmax(maps, radius=2))  # window clipped at the border: only the corner counts
    np.testing.assert_allclose(local[0, 0], [7.0, 0.0], atol=1e-4)


def test_local_soft_argmax_ignores_far_mass_that_biases_the_global_one():
    from flzoo.models.decoding import soft_argmax

    rng = np.random.default_rng(4)
    maps, peaks = _gaussians(rng, n=2, size=32, sigma=1.0)
    maps = maps + 0.01  # a floor of probability everywhere, as in an untrained map
    e_local = np.abs(_np(soft_argmax(maps, radius=3)) - peaks).max()
    e_global = np.abs(_np(soft_argmax(maps)) - peaks).max()
    assert e_local < 0.15 < e_global


def test_landmark_scores_per_variant():
    from flzoo.models.decoding import decode_output, landmark_scores

    rng = np.random.default_rng(5)
    logits = rng.normal(size=(2, 8, 8, 69)).astype(np.float32)
    probs = _np(landmark_scores(logits, "pwc"))
    assert probs.shape == (2, 8, 8, 68)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(probs, (e / e.sum(-1, keepdims=True))[..., 1:], rtol=1e-5)
    dist = _np(landmark_scores(logits[..., :68], "distribution"))
    np.testing.assert_allclose(dist.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(_np(landmark_scores(logits, "heatmap_reg")), logits[..., 1:])
    pts = rng.normal(size=(2, 3, 68, 2)).astype(np.float32)
    np.testing.assert_allclose(_np(decode_output(pts, "cascaded")), pts[:, -1])
    with pytest.raises(ValueError, match="direct"):
        landmark_scores(logits, "direct")
    with pytest.raises(ValueError, match="decoding='mean'"):
        decode_output(logits, "pwc", method="mean")


def test_pwc_decoding_finds_the_landmark_class_peaks():
    """A PWC output whose class l+1 logit is high at landmark l's cell decodes back to those cells."""
    from flzoo.models.decoding import decode_output

    rng = np.random.default_rng(6)
    logits = np.zeros((2, 16, 16, 69), np.float32)
    cells = np.stack([rng.choice(256, 68, replace=False) for _ in range(2)])  # distinct cells per face
    iy, ix = np.divmod(cells, 16)
    for b in range(2):
        logits[b, iy[b], ix[b], np.arange(1, 69)] = 8.0
    expected = (np.stack([ix, iy], -1) + 0.5) * 4 - 0.5
    np.testing.assert_allclose(_np(decode_output(logits, "pwc", stride=4, method="argmax")), expected, atol=1e-5)
    # A neighbouring landmark's cell lowers this class's probability there, so refined estimates may move
    # within the cell, never out of it (an off-by-one channel would land them on other landmarks).
    for method in ("subpixel", "soft_argmax"):
        out = _np(decode_output(logits, "pwc", stride=4, method=method))
        np.testing.assert_allclose(out, expected, atol=0.25 * 4, err_msg=method)
