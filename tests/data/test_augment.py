import numpy as np
import pytest

from flzoo.data.augment import AugmentConfig, AugmentParams, photometric
from flzoo.data.crop import crop_matrix, crop_square, transform_points
from flzoo.landmarks import MIRROR


def test_mirror_is_an_involution_that_swaps_the_eyes():
    assert sorted(MIRROR.tolist()) == list(range(68))
    np.testing.assert_array_equal(MIRROR[MIRROR], np.arange(68))
    assert sorted(MIRROR[36:42].tolist()) == list(range(42, 48))
    assert MIRROR[36] == 45 and MIRROR[39] == 42  # outer <-> outer, inner <-> inner corners
    assert MIRROR[0] == 16 and MIRROR[48] == 54 and MIRROR[8] == 8 and MIRROR[30] == 30


def test_mirrored_mean_face_is_the_mean_face(data_root):
    """On real faces: flipping the image and permuting the points gives a face whose landmark l sits where
    landmark l of an upright face sits (left eye lands on the right eye's place)."""
    from flzoo.data import discover

    faces = discover(data_root)["helen_test"][:120]
    shapes = []
    for face in faces:  # normalise each face into its crop, then average
        shapes.append(transform_points(crop_matrix(*crop_square(face.points), 100), face.points))
    mean = np.mean(shapes, axis=0)
    def residual(perm):
        """Largest distance after the best similarity fit of the mirrored (flipped + ``perm``) mean face."""
        z = (-mean[:, 0] + 1j * mean[:, 1])[perm]  # flip x, then relabel
        w = mean[:, 0] + 1j * mean[:, 1]
        zc, wc = z - z.mean(), w - w.mean()
        fit = (np.vdot(zc, wc) / np.vdot(zc, zc)) * zc + w.mean()
        return np.abs(fit - w)

    good = residual(MIRROR)
    assert good.max() < 1.5 and good[36:48].max() < 1.0  # px in a 100 px crop
    wrong = MIRROR.copy()
    wrong[[36, 39]] = wrong[[39, 36]]  # outer and inner eye corner confused
    assert residual(wrong)[36:48].max() > 5.0
    assert residual(np.arange(68))[36:48].max() > 20.0  # no relabelling: eyes swap sides


def test_sampling_is_reproducible_and_in_range():
    config = AugmentConfig(flip=True, photometric=0.2)
    a = [config.sample(np.random.default_rng([3, 1, i])) for i in range(500)]
    b = [config.sample(np.random.default_rng([3, 1, i])) for i in range(500)]
    c = [config.sample(np.random.default_rng([4, 1, i])) for i in range(500)]
    assert a == b and a != c
    angles = np.array([p.angle for p in a])
    scales = np.array([p.scale for p in a])
    assert angles.min() >= -30 and angles.max() <= 30 and angles.min() < -25 and angles.max() > 25
    assert scales.min() >= 0.6 and scales.max() <= 1.0 and scales.min() < 0.65 and scales.max() > 0.95
    assert 0.4 < np.mean([p.flip for p in a]) < 0.6
    assert all(0.8 <= p.contrast <= 1.2 and abs(p.brightness) <= 0.2 * 255 for p in a)


def test_options_do_not_change_the_geometry_drawn_for_a_seed():
    plain = AugmentConfig().sample(np.random.default_rng(9))
    rich = AugmentConfig(flip=True, photometric=0.3).sample(np.random.default_rng(9))
    assert (plain.angle, plain.scale) == (rich.angle, rich.scale)
    assert not any(AugmentConfig().sample(np.random.default_rng(i)).flip for i in range(50))


@pytest.mark.parametrize("kwargs, field", [
    ({"scale": (1.0, 0.5)}, "augment.scale"), ({"scale": 0.8}, "augment.scale"),
    ({"rotation": -5}, "augment.rotation"), ({"photometric": 1.5}, "augment.photometric"),
    ({"flip": "yes"}, "augment.flip"),
])
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        AugmentConfig(**kwargs)


def test_photometric_jitter():
    image = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    np.testing.assert_array_equal(photometric(image, AugmentParams()), image.astype(np.float32))
    bright = photometric(image, AugmentParams(brightness=40.0))
    assert bright.dtype == np.float32 and bright.max() <= 255 and bright.mean() > image.mean() + 20
    grey = photometric(image, AugmentParams(saturation=0.0))
    np.testing.assert_allclose(grey[..., 0], grey[..., 1], atol=1e-4)


def test_shift_is_drawn_after_the_other_parameters_and_has_the_asked_spread():
    """Recipes without a shift draw exactly what they drew before it existed; the shift is normal with the
    asked standard deviation (per axis, in crop sides), clipped at SHIFT_CLIP deviations."""
    from flzoo.data.augment import SHIFT_CLIP

    plain, shifted = AugmentConfig(flip=True, photometric=0.2), AugmentConfig(flip=True, photometric=0.2, shift=0.07)
    draws = [(plain.sample(np.random.default_rng([0, i])), shifted.sample(np.random.default_rng([0, i])))
             for i in range(4000)]
    for a, b in draws[:50]:
        assert (a.angle, a.scale, a.flip, a.brightness) == (b.angle, b.scale, b.flip, b.brightness)
        assert a.shift_x == a.shift_y == 0.0
    sx = np.array([b.shift_x for _, b in draws])
    sy = np.array([b.shift_y for _, b in draws])
    assert abs(sx.std() - 0.07) < 0.005 and abs(sy.std() - 0.07) < 0.005 and abs(sx.mean()) < 0.005
    assert np.abs(np.concatenate([sx, sy])).max() <= SHIFT_CLIP * 0.07 + 1e-12
    with pytest.raises(ValueError, match="augment.shift"):
        AugmentConfig(shift=0.6)
