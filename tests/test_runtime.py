"""Exported runtimes behind flzoo.load: the same points as Keras (every bundled model), made once and cached
under a key of the weights, re-made when the weights change, never used unverified."""

import json
import shutil

import numpy as np
import pytest

from flzoo.registry import bundled_folder, is_available, table

BUNDLED = [name for name, entry in table().items() if is_available(entry)]
BOX = (176, 85, 264, 172)  # the astronaut's face


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    return data.astronaut()


@pytest.mark.parametrize("name", BUNDLED)
def test_litert_gives_keras_points_for_every_bundled_model(name, astronaut):
    import flzoo

    keras_points = flzoo.load(name, detector=None, runtime="keras").predict(astronaut, boxes=[BOX])[0]["points"]
    fast = flzoo.load(name, detector=None, runtime="litert")
    assert fast.runtime == "litert"
    points = fast.predict(astronaut, boxes=[BOX])[0]["points"]
    assert np.abs(points - keras_points).max() < 0.05


def test_onnx_gives_keras_points_and_auto_picks_a_verified_runtime(astronaut):
    import flzoo

    keras_points = flzoo.load(detector=None, runtime="keras").predict(astronaut, boxes=[BOX])[0]["points"]
    onnx = flzoo.load(detector=None, runtime="onnx")
    assert onnx.runtime == "onnx"
    assert np.abs(onnx.predict(astronaut, boxes=[BOX])[0]["points"] - keras_points).max() < 0.05
    assert flzoo.load(detector=None).runtime == "litert"  # auto: the fastest, verified


@pytest.mark.slow
def test_the_cache_is_keyed_by_the_weights_and_never_trusted_unverified(tmp_path, astronaut, monkeypatch):
    import flzoo

    monkeypatch.setenv("FLZOO_CACHE", str(tmp_path / "cache"))
    from flzoo.export import cache_key
    from flzoo.models.pretrained import cache_dir

    folder = shutil.copytree(bundled_folder("pwc.lite"), tmp_path / "pwc")  # lite: the quickest export
    messages = []
    from flzoo.export import runtime_model
    from flzoo.weights import load_model

    model = runtime_model(load_model(folder), folder, "litert", log=messages.append)
    assert len(messages) == 1 and "exporting pwc to litert" in messages[0]
    runtime_model(load_model(folder), folder, "litert", log=messages.append)
    assert len(messages) == 1  # cached: not exported again
    place = model.path.parent
    record = json.loads((place / "verified.json").read_text())
    assert record["ok"] and record["max_diff_px"] < 0.05 and record["key"] == cache_key(folder)

    record["ok"] = False  # an export that did not match Keras is never used
    (place / "verified.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="differs from Keras"):
        runtime_model(load_model(folder), folder, "litert", log=messages.append)
    assert flzoo.load(folder, detector=None, runtime="auto").runtime in ("onnx", "keras")

    from safetensors.numpy import load_file, save_file  # new weights: a new key, a new export

    tensors = load_file(str(folder / "model.safetensors"))
    key = sorted(tensors)[0]
    tensors[key] = tensors[key] * 0.5
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "flzoo", "flzoo_version": "0.1.0"})
    assert cache_key(folder) != record["key"]
    runtime_model(load_model(folder), folder, "litert", log=messages.append)
    assert "exporting pwc to litert" in messages[-1] and str(cache_dir()) in messages[-1]
