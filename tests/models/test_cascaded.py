"""The DAN cascade (flzoo/models/cascaded.py): parameter count, geometry layers, behaviour on every backend."""

import importlib.util
import json

import numpy as np
import pytest

from flzoo.paths import REPO_ROOT

PAPER_TOTAL = 35_053_144
PAPER_SUB_NETWORK = 11_146_312
SIZE = 112


def _similarity(scale, angle_deg, tx, ty):
    c, s = scale * np.cos(np.radians(angle_deg)), scale * np.sin(np.radians(angle_deg))
    return np.array([[c, -s, tx], [s, c, ty]], dtype=np.float64)


def _apply(matrix, points):
    return points @ matrix[:, :2].T + matrix[:, 2]


def _trainable(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


@pytest.fixture(scope="module")
def cascaded():
    from flzoo.models import cascaded

    return cascaded


@pytest.fixture(scope="module")
def lite(cascaded):
    return cascaded.cascaded_network(input_size=SIZE, stages=3, scale="lite")


def _set_offsets(model, stage, bias):
    """Zero a stage's offset layer kernel and set its bias (in units of the input size)."""
    layer = model.get_layer(f"s{stage}_offsets")
    kernel, _ = layer.get_weights()
    layer.set_weights([np.zeros_like(kernel), np.asarray(bias, np.float32).reshape(-1)])


def test_paper_parameter_count(cascaded):
    model = cascaded.cascaded_network(input_size=SIZE, stages=3, scale="paper")
    total = _trainable(model.trainable_weights)
    first = _trainable([w for layer in model.layers if layer.name.startswith("s1_") for w in layer.trainable_weights])
    assert total == PAPER_TOTAL, total
    assert first == PAPER_SUB_NETWORK, first
    assert model.output_shape == (None, 3, 68, 2)


def test_forward_shape_and_finite(cascaded, lite):
    x = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    y = np.asarray(lite(x, training=False))
    assert y.shape == (2, 3, 68, 2)
    assert np.all(np.isfinite(y))
    single = cascaded.cascaded_network(input_size=64, stages=1, scale="lite")
    assert single.output_shape == (None, 1, 68, 2)


def test_zero_offsets_give_mean_shape_and_stages_compose(cascaded):
    lite = cascaded.cascaded_network(input_size=SIZE, stages=3, scale="lite")  # its weights get overwritten
    mean = cascaded.default_mean_shape(SIZE)
    x = np.random.default_rng(1).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    for stage in (1, 2, 3):
        _set_offsets(lite, stage, np.zeros(136))
    y = np.asarray(lite(x, training=False))
    np.testing.assert_allclose(y, np.broadcast_to(mean, y.shape), atol=1e-3)

    # Stage 1 lands on a similarity of the mean shape; zero offsets later must keep it (T^-1(T(S)) = S).
    m1 = _similarity(1.1, 20.0, 4.0, -3.0)
    s1 = _apply(m1, mean)
    _set_offsets(lite, 1, (s1 - mean) / SIZE)
    y = np.asarray(lite(x, training=False))
    for stage in range(3):
        np.testing.assert_allclose(y[:, stage], np.broadcast_to(s1, (2, 68, 2)), atol=2e-3)

    # A stage-2 offset d is applied in the mean-shape frame: T(S1) = mean, so S2 = m1 (mean + d * S).
    d = np.random.default_rng(2).normal(0, 0.01, (68, 2))
    _set_offsets(lite, 2, d)
    y = np.asarray(lite(x, training=False))
    np.testing.assert_allclose(y[:, 1], np.broadcast_to(_apply(m1, mean + d * SIZE), (2, 68, 2)), atol=2e-3)
    np.testing.assert_allclose(y[:, 2], y[:, 1], atol=2e-3)


def test_similarity_recovers_known_transform(cascaded):
    mean = cascaded.default_mean_shape(SIZE).astype(np.float64)
    forward = [_similarity(0.8, -35.0, 10.0, 5.0), _similarity(1.3, 170.0, -7.5, 40.0)]
    shapes = np.stack([_apply(m, mean) for m in forward]).astype("float32")
    estimate = np.asarray(cascaded.similarity_to_mean(shapes, mean))
    for m, e in zip(forward, estimate):
        inverse = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
        np.testing.assert_allclose(e, inverse, atol=1e-4)
    # With noise it is the least-squares similarity (checked against numpy's solver).
    noisy = shapes[0] + np.random.default_rng(3).normal(0, 2.0, (68, 2)).astype("float32")
    rows = [[x, -y, 1, 0] for x, y in noisy] + [[y, x, 0, 1] for x, y in noisy]
    a, b, tx, ty = np.linalg.lstsq(np.array(rows), np.concatenate([mean[:, 0], mean[:, 1]]), rcond=None)[0]
    estimate = np.asarray(cascaded.similarity_to_mean(noisy[None], mean))[0]
    np.testing.assert_allclose(estimate, [[a, -b, tx], [b, a, ty]], atol=1e-3)
    inverse = np.asarray(cascaded.invert_affine(estimate[None]))[0]
    np.testing.assert_allclose(_apply(inverse, _apply(estimate, mean)), mean, atol=1e-3)


def test_warp_matches_cv2_warp_affine(cascaded):
    import cv2

    h, w = 40, 52
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.stack([128 + 100 * np.sin(xx / 6.0) * np.cos(yy / 5.0), 2.0 * xx + yy], axis=-1).astype(np.float32)
    matrices = [_similarity(1.0, 0.0, 3.0, -2.0),      # integer shift: no interpolation at all
                _similarity(1.0, 0.0, 0.5, 0.25),      # sub-pixel shift: tests the pixel-centre convention
                _similarity(0.9, 17.0, 6.3, -4.1)]     # rotation + scale, with pixels sampled off the border
    for m in matrices:
        expected = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        got = np.asarray(cascaded.bilinear_warp(image[None], m[None].astype(np.float32)))[0]
        # OpenCV rounds sampling positions to 1/32 px: inside the image that costs at most ~gradient / 32
        # (gradient <= 20 / px here); where a sample straddles the zero border, up to 2/32 of the pixel value.
        inverse = cv2.invertAffineTransform(m)
        src = np.stack([xx, yy], axis=-1) @ inverse[:, :2].T + inverse[:, 2]
        inside = (src[..., 0] >= 0) & (src[..., 0] <= w - 1) & (src[..., 1] >= 0) & (src[..., 1] <= h - 1)
        np.testing.assert_allclose(got[inside], expected[inside], atol=0.5)
        np.testing.assert_allclose(got[~inside], expected[~inside], atol=2.0 / 32.0 * np.abs(image).max() + 0.5)
    exact = np.asarray(cascaded.bilinear_warp(image[None], matrices[0][None].astype(np.float32)))[0]
    # out(x, y) = image(x - 3, y + 2), zero where that falls outside.
    np.testing.assert_array_equal(exact[:-2, 3:], image[2:, :-3])
    assert np.all(exact[-2:] == 0) and np.all(exact[:, :3] == 0)


def test_heatmap_is_one_at_landmarks(cascaded):
    points = np.array([[[10.0, 20.0]] + [[50.0, 60.0]] * 67], dtype=np.float32)
    heat = np.asarray(cascaded.landmark_heatmap(points, 64))[0, ..., 0]
    assert heat[20, 10] == pytest.approx(1.0) and heat[60, 50] == pytest.approx(1.0)
    assert heat[20, 13] == pytest.approx(1.0 / 4.0)  # 3 px from the nearest landmark


def test_gradient_from_last_stage_reaches_first_stage_convs(lite):
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(4).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32"))
    target = tf.constant(np.random.default_rng(5).uniform(20, 90, (2, 68, 2)).astype("float32"))
    kernel = lite.get_layer("s1_conv1_1").kernel
    with tf.GradientTape() as tape:
        last = lite(x, training=True)[:, -1]
        loss = tf.reduce_mean(tf.norm(last - target, axis=-1))
    grad = tape.gradient(loss, kernel)
    assert grad is not None
    assert np.all(np.isfinite(grad.numpy())) and np.abs(grad.numpy()).max() > 0


def test_serialises_and_rebuilds(cascaded):
    import keras

    model = cascaded.cascaded_network(input_size=64, stages=2, scale="lite",
                                      mean_shape=cascaded.default_mean_shape(64) + 1.0)
    clone = keras.Model.from_config(json.loads(json.dumps(model.get_config())))
    clone.set_weights(model.get_weights())
    x = np.random.default_rng(6).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(clone(x)), np.asarray(model(x)), atol=1e-4)
    assert clone.get_layer("s1_shape").mean_shape[0, 0] == pytest.approx(model.get_layer("s1_shape").mean_shape[0, 0])


@pytest.mark.parametrize("kwargs, message", [
    ({"scale": "huge"}, "scale='huge'"),
    ({"input_size": 100}, "input_size=100"),
    ({"stages": 0}, "stages=0"),
    ({"mean_shape": np.zeros((5, 2))}, "(5, 2)"),
])
def test_bad_arguments_name_the_value(cascaded, kwargs, message):
    with pytest.raises(ValueError, match=__import__("re").escape(message)):
        cascaded.cascaded_network(**kwargs)


def test_mean_shape_asset(cascaded, tmp_path):
    mean = cascaded.default_mean_shape(SIZE)
    assert mean.shape == (68, 2) and np.all((mean > 0) & (mean < SIZE - 1))
    assert mean[36, 0] < mean[45, 0] and mean[8, 1] > mean[30, 1] > mean[19, 1]  # eyes, chin below nose below brows
    bad = tmp_path / "shape.json"
    bad.write_text(json.dumps({"points": [[0, 0]] * 5}))
    with pytest.raises(ValueError, match="shape.json.*expected \\(68, 2\\)"):
        cascaded.default_mean_shape(SIZE, path=bad)


@pytest.mark.data
def test_mean_shape_asset_matches_training_data(cascaded, data_root):
    spec = importlib.util.spec_from_file_location("make_mean_shape", REPO_ROOT / "tools" / "make_mean_shape.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    shape, counts = tool.mean_shape(data_root)
    stored = json.loads(cascaded.MEAN_SHAPE_FILE.read_text())
    assert stored["faces"] == counts
    np.testing.assert_allclose(np.array(stored["points"]), shape, atol=1e-5)


BACKEND_CODE = """
import json
import numpy as np
import keras
from flzoo.models.cascaded import cascaded_network, default_mean_shape, bilinear_warp

# Small and two stages: on JAX, building and tracing cost grows with the number of layers, not their size.
model = cascaded_network(input_size=32, stages=2, scale="lite")
x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
kernel_index = [id(v) for v in model.trainable_variables].index(id(model.get_layer("s1_conv1_1").kernel))

def loss_and_output(trainable, non_trainable):
    out, _ = model.stateless_call(trainable, non_trainable, x, training=True)
    loss = keras.ops.mean(keras.ops.sqrt(keras.ops.sum(keras.ops.square(out[:, -1] - 15.0), axis=-1)))
    return loss, out

def run(trainable, non_trainable):
    # (points, gradient of a last-stage point loss w.r.t. the first conv kernel), per backend.
    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        global _step
        _step = globals().get("_step") or jax.jit(jax.value_and_grad(loss_and_output, has_aux=True))
        (_, out), grads = _step(trainable, non_trainable)
        return np.asarray(out), np.asarray(grads[kernel_index])
    if backend == "torch":
        trainable = [t.detach().clone().requires_grad_(True) for t in trainable]
        _, out = loss_and_output(trainable, non_trainable)
        out[:, -1].sub(15.0).square().sum(-1).sqrt().mean().backward()
        return out.detach().numpy(), trainable[kernel_index].grad.numpy()
    import tensorflow as tf
    trainable = [tf.Variable(t) for t in trainable]
    with tf.GradientTape() as tape:
        loss, out = loss_and_output(trainable, non_trainable)
    return out.numpy(), tape.gradient(loss, trainable[kernel_index]).numpy()

trainable = [v.value for v in model.trainable_variables]
non_trainable = [v.value for v in model.non_trainable_variables]
points, grad = run(trainable, non_trainable)
names = [v.path for v in model.trainable_variables]
zeroed = [keras.ops.zeros_like(t) if "_offsets/" in n else t for n, t in zip(names, trainable)]
assert sum("_offsets/" in n for n in names) == 4, names
mean_points, _ = run(zeroed, non_trainable)

image = np.random.default_rng(1).uniform(0, 1, (1, 8, 8, 2)).astype("float32")
shift = np.array([[[1, 0, 2], [0, 1, 1]]], "float32")  # out(x, y) = image(x - 2, y - 1)
warped = keras.ops.convert_to_numpy(bilinear_warp(image, shift))
print(json.dumps({
    "shape": list(points.shape), "finite": bool(np.all(np.isfinite(points))),
    "mean_err": float(np.abs(mean_points - default_mean_shape(32)).max()),
    "warp_err": float(np.abs(warped[0, 1:, 2:] - image[0, :-1, :-2]).max()),
    "grad_max": float(np.abs(grad).max()), "grad_finite": bool(np.all(np.isfinite(grad)))}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_runs_on_other_backends(on_backend, backend):
    result = on_backend(backend, BACKEND_CODE)
    assert result["shape"] == [2, 2, 68, 2] and result["finite"]
    assert result["mean_err"] < 1e-3
    assert result["warp_err"] < 1e-6
    assert result["grad_finite"] and result["grad_max"] > 0
