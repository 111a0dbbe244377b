"""Model files: safetensors keyed by structural path + config.json; strict, all-or-nothing loading."""

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


def test_keys_are_structural_and_match_keras_h5_paths(saved, tmp_path):
    """Keys must not depend on auto-generated layer names: a second build in the same session (whose layers get
    new auto names) gives the same keys, and they are the dataset paths of Keras' own .weights.h5 file."""
    import h5py
    from safetensors.numpy import load_file

    from flzoo.models import build
    from flzoo.weights import variable_table

    model, folder = saved
    keys = set(load_file(str(folder / "model.safetensors")))
    other = build(**BUILD)
    assert set(variable_table(other)) == keys
    assert len(keys) == len(model.weights)
    model.save_weights(str(tmp_path / "w.weights.h5"))
    h5_keys = []
    with h5py.File(tmp_path / "w.weights.h5") as f:
        f.visititems(lambda name, obj: h5_keys.append(name) if isinstance(obj, h5py.Dataset) else None)
    assert keys <= set(h5_keys)


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
    _rewrite(bad, lambda t: t.update({"layers/ghost/vars/0": np.zeros(3, np.float32)}))
    with pytest.raises(ValueError, match="unexpected tensor 'layers/ghost/vars/0'"):
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


def test_a_tensorflow_file_loads_on_jax_with_the_same_network_outputs(saved, on_backend):
    """The structural keys survive a new process and another backend. Raw network outputs are compared (the
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
