"""LandmarkModel: validation, target specs, config round trip, per-variant losses + fit, decoding, export."""


import numpy as np
import pytest

from tiny_models import tiny_discriminator, tiny_model, tiny_network, toy_batch

NON_ADVERSARIAL = ("direct", "cascaded", "distribution", "heatmap_reg", "pwc", "hybrid")
TERMS = {"direct": {"point"}, "cascaded": {"point", "point_stage1", "point_stage2"}, "distribution": {"kl"},
         "heatmap_reg": {"l2"}, "pwc": {"ce"}, "hybrid": {"ce", "point"}}


def test_invalid_arguments_name_the_field_and_the_expectation():
    from flzoo.models.landmark_model import LandmarkModel

    net = tiny_network("pwc")
    with pytest.raises(ValueError, match="variant='pcw'.*expected one of"):
        LandmarkModel(net, "pcw", 32, stride=4)
    with pytest.raises(ValueError, match="decoding='mean'"):
        LandmarkModel(net, "pwc", 32, stride=4, decoding="mean")
    with pytest.raises(ValueError, match="pwc_disc was built without its shape discriminator"):
        LandmarkModel(net, "pwc_disc", 32, stride=4).compile(optimizer="adam")  # an inference copy: no training
    with pytest.raises(ValueError, match="'pwc' takes no discriminator"):
        LandmarkModel(net, "pwc", 32, stride=4, discriminator=tiny_discriminator())
    with pytest.raises(ValueError, match=r"expects \(B, 16, 16, 69\)"):
        LandmarkModel(net, "pwc", 32, stride=2)  # the network's maps are at stride 4
    with pytest.raises(ValueError, match=r"expects \(B, 8, 8, 68\)"):
        LandmarkModel(net, "distribution", 32, stride=4)  # 69 channels given
    with pytest.raises(ValueError, match="det_steps=0"):
        LandmarkModel(net, "pwc_disc", 32, stride=4, discriminator=tiny_discriminator(), det_steps=0)


@pytest.mark.parametrize("variant, size, stride, kind, sigma", [
    ("direct", 224, 1, "points", 3.0), ("cascaded", 112, 1, "points", 1.5),
    ("distribution", 224, 1, "gaussian", 3.0), ("heatmap_reg", 448, 4, "heatmap_reg", 1.5),
    ("pwc", 128, 4, "pwc", 1.0), ("hybrid_disc", 224, 1, "pwc", 3.0),
])
def test_target_spec_tells_the_pipeline_which_maps_to_make(variant, size, stride, kind, sigma):
    from flzoo.data.targets import TargetSpec
    from flzoo.models.landmark_model import LandmarkModel

    model = LandmarkModel.__new__(LandmarkModel)  # target_spec needs only these fields
    model.variant, model.input_size, model.stride, model.sigma = variant, size, stride, None
    spec = model.target_spec
    assert isinstance(spec, TargetSpec)
    assert (spec.kind, spec.stride) == (kind, stride)
    assert spec.sigma == pytest.approx(sigma)  # 3 px at 224, in map cells, floored at 1 cell


def test_sigma_option_sets_the_gaussian_target_width():
    from flzoo.models import build

    model = build("heatmap_reg", "lite", 128, sigma=2.0)
    assert model.target_spec.sigma == 2.0
    assert build(**model.build_config()).target_spec.sigma == 2.0  # kept in the config the weights carry
    assert build("heatmap_reg", "lite", 128).target_spec.sigma == 1.0
    with pytest.raises(ValueError, match="sigma=0"):
        build("distribution", "lite", 128, sigma=0)


def test_config_round_trip_goes_through_build(monkeypatch):
    import flzoo.models

    calls = []

    def fake_build(**kwargs):
        calls.append(kwargs)
        return tiny_model("pwc", config=kwargs)

    monkeypatch.setattr(flzoo.models, "build", fake_build, raising=False)
    cfg = {"variant": "pwc", "backbone": "lite", "input_size": 32}
    model = tiny_model("pwc", config=cfg)
    assert model.get_config() == cfg and model.build_config() == cfg
    assert model.build_config() is not model.build_config()  # callers cannot mutate the model's copy
    clone = type(model).from_config(model.get_config())
    assert calls == [cfg] and clone.build_config() == cfg
    with pytest.raises(ValueError, match="without `config`"):
        tiny_model("pwc").build_config()


@pytest.mark.parametrize("variant", NON_ADVERSARIAL)
def test_plain_compile_and_fit_trains_every_variant_and_reports_terms(variant):
    import keras

    keras.utils.set_random_seed(0)
    model = tiny_model(variant)
    x, y = toy_batch(model)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(x, y, batch_size=8, epochs=4, verbose=0).history
    assert TERMS[variant] | {"loss"} <= set(history)
    assert all(np.isfinite(v).all() for v in history.values())
    assert history["loss"][-1] < history["loss"][0]
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert TERMS[variant] <= set(logs)


def test_compute_loss_rejects_targets_without_maps():
    model = tiny_model("pwc")
    x, y = toy_batch(model, n=2)
    with pytest.raises(ValueError, match="lack 'maps'"):
        model.compute_loss(x, {"points": y["points"]}, model(x))
    with pytest.raises(ValueError, match="must be a dict with 'points'"):
        model.compute_loss(x, y["maps"], model(x))


@pytest.mark.parametrize("variant", ["direct", "cascaded", "distribution", "hybrid_disc"])
def test_predict_points_decodes_the_network_output(variant):
    model = tiny_model(variant)
    x, _ = toy_batch(model, n=5)
    points = model.predict_points(x, batch_size=2)
    assert points.shape == (5, 68, 2) and points.dtype == np.float32
    np.testing.assert_allclose(points, np.asarray(model.decode(model(x, training=False))), atol=1e-4)
    argmax = model.predict_points(x, method="argmax")
    if variant in ("direct", "cascaded"):
        np.testing.assert_allclose(argmax, points, atol=1e-5)
    else:  # argmax lands on cell centres of the stride-4 map: (i + 0.5) * 4 - 0.5
        np.testing.assert_allclose((argmax + 0.5) / 4 - 0.5, np.round((argmax + 0.5) / 4 - 0.5), atol=1e-4)
    with pytest.raises(ValueError, match=r"expected \(B, 32, 32, 3\)"):
        model.predict_points(x[:, :16])


def test_inference_model_exports_to_onnx(tmp_path):
    pytest.importorskip("tf2onnx")
    ort = pytest.importorskip("onnxruntime")
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("ONNX export is checked with the TensorFlow backend")
    model = tiny_model("hybrid")
    x, _ = toy_batch(model, n=3)
    expected = model.predict_points(x)
    model.inference_model().export(str(tmp_path / "model.onnx"), format="onnx", verbose=False)
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, expected, atol=1e-3)


FIT_CODE = """
import json, sys
import numpy as np
import keras
from tiny_models import tiny_model, toy_batch

keras.utils.set_random_seed(0)
out = {{}}
for variant in ("cascaded", "distribution", "hybrid"):
    model = tiny_model(variant)
    x, y = toy_batch(model)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    hist = model.fit(x, y, batch_size=8, epochs=3, verbose=0).history
    pts = model.predict_points(x[:3])
    out[variant] = {{"history": {{k: [float(v) for v in vals] for k, vals in hist.items()}},
                    "points_shape": list(pts.shape), "points_finite": bool(np.isfinite(pts).all())}}
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_plain_fit_on_other_backends(on_backend, backend):
    result = on_backend(backend, FIT_CODE.format())
    for variant, run in result.items():
        hist = run["history"]
        assert {"loss"} | TERMS[variant] <= set(hist), (variant, hist)
        assert all(np.isfinite(v).all() for v in hist.values()), (variant, hist)
        assert hist["loss"][-1] < hist["loss"][0], (variant, hist)
        assert run["points_shape"] == [3, 68, 2] and run["points_finite"]


def test_default_decoding_is_the_estimate_the_point_loss_trains():
    """hybrid / hybrid_disc train their point term on the local soft-argmax, so they decode with it; the other
    map variants refine the peak (sub-pixel). The bundled hybrid scores better that way (docs/losses.md)."""
    from flzoo.models import build

    assert build("hybrid", "lite").decoding == "soft_argmax"
    assert build("pwc", "lite").decoding == "subpixel"
    assert build("hybrid", "lite", decoding="subpixel").decoding == "subpixel"
