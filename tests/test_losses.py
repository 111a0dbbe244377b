import numpy as np
import pytest

from flzoo.data.targets import gaussian_maps, pwc_labels


def _np(x):
    return np.asarray(x)


def _log_softmax(z, axis):
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def test_point_loss_is_mean_euclidean_distance():
    from flzoo.losses import point_loss

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 3, 68, 2)).astype(np.float32) * 5
    expected = np.linalg.norm(a - b, axis=-1).mean()
    assert float(point_loss(a, b)) == pytest.approx(expected, rel=1e-5)
    mask = np.zeros((3, 68), np.float32)
    mask[:, :10] = 1
    assert float(point_loss(a, b, mask=mask)) == pytest.approx(np.linalg.norm(a - b, axis=-1)[:, :10].mean(),
                                                               rel=1e-5)


def test_cascade_point_loss_averages_the_stages():
    from flzoo.losses import cascade_point_loss

    rng = np.random.default_rng(1)
    stages = rng.normal(size=(2, 3, 68, 2)).astype(np.float32)
    true = rng.normal(size=(2, 68, 2)).astype(np.float32)
    mean, per_stage = cascade_point_loss(stages, true)
    expected = np.linalg.norm(stages - true[:, None], axis=-1).mean(axis=(0, 2))
    np.testing.assert_allclose(_np(per_stage), expected, rtol=1e-5)
    assert float(mean) == pytest.approx(expected.mean(), rel=1e-5)


def test_kl_is_zero_at_the_target_and_ignores_target_scale_and_empty_channels():
    from flzoo.losses import kl_loss

    rng = np.random.default_rng(2)
    points = rng.uniform(2, 13, (68, 2))
    target = gaussian_maps(points, 16, 1.5)[None]  # peak-1 Gaussians
    normalised = gaussian_maps(points, 16, 1.5, normalise=True)[None]
    logits = np.log(normalised + 1e-12).astype(np.float32)
    assert float(kl_loss(logits, target)) == pytest.approx(0.0, abs=1e-4)
    noisy = logits + rng.normal(size=logits.shape).astype(np.float32)
    value = float(kl_loss(noisy, target))
    assert value > 0.1
    assert float(kl_loss(noisy, normalised)) == pytest.approx(value, rel=1e-4)
    # A landmark off the map has an empty target: the loss averages over the others only.
    empty = target.copy()
    empty[..., 0] = 0
    flat = noisy.reshape(1, 256, 68)
    q = normalised.reshape(1, 256, 68)
    per_channel = (q * (np.log(np.maximum(q, 1e-8)) - _log_softmax(flat, 1))).sum(1)[0]
    assert float(kl_loss(noisy, empty)) == pytest.approx(per_channel[1:].mean(), rel=1e-4)


def test_heatmap_l2_and_pixel_ce_match_numpy():
    from flzoo.losses import heatmap_l2, pixel_ce

    rng = np.random.default_rng(3)
    pred, target = rng.normal(size=(2, 2, 8, 8, 69)).astype(np.float32)
    assert float(heatmap_l2(pred, target)) == pytest.approx(np.mean((pred - target) ** 2), rel=1e-5)
    labels = np.stack([pwc_labels(rng.uniform(0, 7, (68, 2)), 8) for _ in range(2)])
    picked = np.take_along_axis(_log_softmax(pred, -1), labels[..., None].astype(np.int64), -1)
    assert float(pixel_ce(pred, labels)) == pytest.approx(-picked.mean(), rel=1e-5)


def _hybrid_inputs(seed=4):
    from flzoo.data.crop import crop_to_map

    rng = np.random.default_rng(seed)
    points = rng.uniform(4, 27, (2, 68, 2)).astype(np.float32)  # input pixels of a 32 px crop
    labels = np.stack([pwc_labels(crop_to_map(p, 4), 8) for p in points])
    logits = rng.normal(size=(2, 8, 8, 69)).astype(np.float32)
    return logits, labels, points


def _grad(fn, x):
    import tensorflow as tf

    x = tf.Variable(x)
    with tf.GradientTape() as tape:
        value = fn(x)
    return value, tape.gradient(value, x)


def test_hybrid_point_term_has_a_finite_nonzero_gradient_wrt_logits():
    """The released code took the point term on argmax points: zero gradient. Ours must reach the logits."""
    from flzoo.losses import hybrid_loss

    logits, labels, points = _hybrid_inputs()
    value, grad = _grad(lambda z: hybrid_loss(z, labels, points, stride=4)[1]["point"], logits)
    grad = _np(grad)
    assert np.isfinite(float(value)) and np.isfinite(grad).all()
    assert np.abs(grad).max() > 1e-4
    # and it points the right way: a small step against it lowers the point term
    lower = float(hybrid_loss(logits - 0.5 * grad / np.abs(grad).max(), labels, points, stride=4)[1]["point"])
    assert lower < float(value)


def test_argmax_points_carry_no_gradient():
    """The released code's defect, for contrast: argmax decoding gives the point term no gradient."""
    from flzoo.losses import point_loss
    from flzoo.models.decoding import decode_argmax

    logits, _, points = _hybrid_inputs()
    _, grad = _grad(lambda z: point_loss(decode_argmax(z[..., 1:], stride=4), points), logits)
    assert grad is None or not np.any(_np(grad))


def test_hybrid_total_is_alpha_ce_plus_beta_point_on_crop_points():
    from flzoo.losses import hybrid_loss, pixel_ce
    from flzoo.models.decoding import soft_points

    logits, labels, points = _hybrid_inputs()
    total, terms = hybrid_loss(logits, labels, points, stride=4, alpha=1.0, beta=0.25)
    assert float(terms["ce"]) == pytest.approx(float(pixel_ce(logits, labels)))
    assert float(total) == pytest.approx(float(terms["ce"]) + 0.25 * float(terms["point"]), rel=1e-6)
    # a point off the crop (no PWC label) is left out of the point term
    moved = points.copy()
    moved[:, 0] = -50.0
    estimate = _np(soft_points(logits, "hybrid", stride=4))
    kept = np.linalg.norm(estimate - points, axis=-1)[:, 1:].mean()
    assert float(hybrid_loss(logits, labels, moved, stride=4)[1]["point"]) == pytest.approx(kept, rel=1e-5)
    # an estimate the caller computed already is used as it is (the adversarial step passes its own)
    assert float(hybrid_loss(logits, labels, points, stride=4, estimate=points + np.float32([3, 4]))[1]["point"]) \
        == pytest.approx(5.0, rel=1e-5)


def test_discriminator_losses_have_the_paper_form_and_the_right_sign():
    from flzoo.losses import adversarial_loss, discriminator_accuracy, discriminator_loss

    real = np.array([[2.0], [0.5], [-1.0]], np.float32)
    fake = np.array([[-3.0], [1.0], [0.2]], np.float32)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    expected = -(np.log(sig(real)).mean() + np.log(1 - sig(fake)).mean())
    assert float(discriminator_loss(real, fake)) == pytest.approx(expected, rel=1e-5)
    assert float(adversarial_loss(fake)) == pytest.approx(-np.log(sig(fake)).mean(), rel=1e-5)
    assert float(discriminator_accuracy(real, fake)) == pytest.approx(0.5 * (2 / 3 + 1 / 3))
    # Minimised: a discriminator that scores real higher and fake lower has the lower loss (the released
    # code minimised the negative).
    assert float(discriminator_loss(real + 1, fake - 1)) < float(discriminator_loss(real, fake))
    # Non-saturating: the detector still gets a strong gradient when the discriminator rejects its shapes.
    value, grad = _grad(adversarial_loss, np.array([[-6.0]], np.float32))
    assert _np(grad)[0, 0] < -0.9


def test_discriminator_frame_is_the_centred_unit_crop():
    from flzoo.losses import normalize_shape

    corners = np.array([[[-0.5, -0.5], [223.5, 223.5], [111.5, 111.5]]], np.float32)
    np.testing.assert_allclose(_np(normalize_shape(corners, 224)), [[[-0.5, -0.5], [0.5, 0.5], [0.0, 0.0]]],
                               atol=1e-6)
