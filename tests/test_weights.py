"""Model files: safetensors keyed by public variable paths + config.json; strict, all-or-nothing loading."""

import json

import numpy as np
import pytest

BUILD = dict(variant="hybrid", backbone="lite", input_size=64, width=0.25)


def _randomise(model, seed=0):
    """Give every weight (BN statistics included) non-initial values, so a load that did nothing is caught."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        shape = tuple(v.shape)
        values = rng.uniform(0.5, 1.5, shape) if "variance" in v.path else rng.normal(0, 0.1, shape)
        v.assign(values.astype(v.dtype))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from flzoo.models import build
    from flzoo.weights import save_model

    model = build(**BUILD)
    _randomise(model)
    folder = save_model(model, tmp_path_factory.mktemp("model") / "m", extra={"metrics": {"nme": 0.05}, "note": "x"})
    return model, folder


def _copy(folder, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(folder, out)
    return out


def test_round_trip_restores_every_weight_and_the_predictions(saved):
    from flzoo.weights import load_model

    model, folder = saved
    loaded = load_model(folder)
    assert loaded.build_config() == model.build_config()
    assert len(loaded.weights) == len(model.weights)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    x = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    np.testing.assert_array_equal(model.predict_points(x), loaded.predict_points(x))


def test_config_json_records_what_loading_and_listing_need(saved):
    import keras

    import flzoo

    model, folder = saved
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["flzoo_version"] == flzoo.__version__
    assert cfg["keras_version"] == keras.__version__
    assert cfg["build"] == model.build_config()
    assert cfg["input_size"] == 64 and cfg["num_points"] == 68 and cfg["decoding"] == model.decoding
    assert cfg["metrics"] == {"nme": 0.05} and cfg["note"] == "x"
    assert cfg["params"]["trainable"] == sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    assert not list(folder.glob("*.tmp"))


def test_keys_are_the_public_variable_paths(saved):
    from safetensors.numpy import load_file

    model, folder = saved
    assert set(load_file(str(folder / "model.safetensors"))) == {v.path for v in model.weights}


def _buildable():
    """Every lite variant (the bundled ones); every other backbone with a map head and the discriminator
    (hybrid_disc; the other map variants differ only in channel counts), and the direct head once."""
    from flzoo.models import BACKBONES, VARIANTS

    return ([(v, "lite") for v in VARIANTS] + [("hybrid_disc", b) for b in BACKBONES if b != "lite"]
            + [("direct", "mobilenet_v2")])


def test_paths_are_unique_and_the_same_in_every_build_of_every_variant_and_backbone():
    """Paths must not depend on auto-generated layer names: building everything twice in one session (where
    Keras would number unnamed layers anew) gives the same, unique paths."""
    from flzoo.models import build
    from flzoo.weights import variable_table

    for variant, backbone in _buildable():
        size = 64 if backbone == "vgg19_fcn" else None  # VGG19 at 224 is slow to build
        first, second = (list(variable_table(build(variant, backbone=backbone, input_size=size))) for _ in "ab")
        assert first == second, (variant, backbone)


def test_float16_storage_halves_the_file_and_keeps_the_points(saved, tmp_path):
    from flzoo.weights import load_model, save_model

    model, folder = saved
    half = save_model(model, tmp_path / "half", dtype="float16")
    ratio = (half / "model.safetensors").stat().st_size / (folder / "model.safetensors").stat().st_size
    assert 0.45 < ratio < 0.55
    assert json.loads((half / "config.json").read_text())["storage"] == {"dtype": "float16"}
    loaded = load_model(half)
    assert all(v.dtype == "float32" for v in loaded.weights)
    x = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded.network(x), model.network(x), rtol=0.02, atol=0.02)
    with pytest.raises(ValueError, match="dtype='int8': expected one of float32, float16"):
        save_model(model, tmp_path / "bad", dtype="int8")


def test_an_inference_copy_drops_the_discriminator_keeps_the_points_and_refuses_training(tmp_path):
    from safetensors.numpy import load_file

    from flzoo.models import build, inference_copy
    from flzoo.weights import load_model, save_model

    model = build(**{**BUILD, "variant": "hybrid_disc"})
    _randomise(model)
    copy = inference_copy(model)
    assert copy.discriminator is None and copy.build_config()["discriminator"] is False
    folder = save_model(copy, tmp_path / "m")
    keys = set(load_file(str(folder / "model.safetensors")))
    assert keys == {v.path for v in model.network.weights}  # every detector tensor, no disc_* one
    loaded = load_model(folder)
    x = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict_points(x), model.predict_points(x))
    with pytest.raises(ValueError, match="built without its shape discriminator .* cannot be trained"):
        loaded.compile(optimizer="adam")
    assert inference_copy(build(**BUILD)).discriminator is None  # models without one pass through
    with pytest.raises(ValueError, match="discriminator not understood for variant='hybrid'"):
        build(**BUILD, discriminator=False)


def _rewrite(folder, change):
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(folder / "model.safetensors"))
    change(tensors)
    save_file(tensors, str(folder / "model.safetensors"))


def test_refuses_missing_extra_and_misshapen_tensors(saved, tmp_path):
    from safetensors.numpy import load_file

    from flzoo.weights import load_model

    _, folder = saved
    key = sorted(load_file(str(folder / "model.safetensors")))[0]

    bad = _copy(folder, tmp_path / "missing")
    _rewrite(bad, lambda t: t.pop(key))
    with pytest.raises(ValueError, match=rf"model\.safetensors.*missing tensor '{key}'"):
        load_model(bad)

    bad = _copy(folder, tmp_path / "extra")
    _rewrite(bad, lambda t: t.update({"ghost/kernel": np.zeros(3, np.float32)}))
    with pytest.raises(ValueError, match="unexpected tensor 'ghost/kernel'"):
        load_model(bad)

    bad = _copy(folder, tmp_path / "shape")
    _rewrite(bad, lambda t: t.update({key: np.zeros(t[key].shape + (2,), t[key].dtype)}))
    with pytest.raises(ValueError, match=rf"tensor '{key}' has shape .* expects"):
        load_model(bad)


def test_refuses_incompatible_version_and_broken_files(saved, tmp_path):
    from flzoo.weights import load_model

    _, folder = saved
    bad = _copy(folder, tmp_path / "version")
    cfg = json.loads((bad / "config.json").read_text())
    cfg["flzoo_version"] = "7.0.0"
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"config\.json: written by flzoo 7\.0\.0"):
        load_model(bad)

    bad = _copy(folder, tmp_path / "json")
    (bad / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config\.json: not valid JSON"):
        load_model(bad)

    bad = _copy(folder, tmp_path / "weights")
    (bad / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match=r"model\.safetensors: not a readable safetensors file"):
        load_model(bad)

    (bad / "model.safetensors").unlink()
    with pytest.raises(ValueError, match=r"model\.safetensors: missing"):
        load_model(bad)
    with pytest.raises(ValueError, match="not a model folder"):
        load_model(tmp_path / "nowhere")


@pytest.mark.slow
def test_a_tensorflow_file_loads_on_jax_with_the_same_network_outputs(saved, on_backend):
    """The keys survive a new process and another backend. Raw network outputs are compared (the
    decoded points of random weights sit on near-ties that float rounding may flip)."""
    model, folder = saved
    x = np.random.default_rng(2).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    expected = np.asarray(model.network(x, training=False))
    out = on_backend("jax", f"""
        import json, keras, numpy as np
        from flzoo.weights import load_model
        x = np.random.default_rng(2).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
        net = load_model({str(folder)!r}).network
        print(json.dumps(keras.ops.convert_to_numpy(net(x, training=False)).tolist()))
    """)
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


def test_importing_the_weights_layer_loads_neither_keras_nor_the_data_loaders():
    """``flzoo.weights`` reads configs (the crop protocol lives in ``flzoo.data.crop``); the rest of the data
    layer (datasets, augmentation, targets) and Keras load only when a model or a face is asked for."""
    import subprocess
    import sys

    code = ("import sys, flzoo.weights, flzoo.data\n"
            "print(sorted(m for m in ('keras', 'cv2', 'flzoo.data.datasets', 'flzoo.data.augment', "
            "'flzoo.data.targets') if m in sys.modules))\n"
            "from flzoo.data import Face\nprint('flzoo.data.datasets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["[]", "True"]
