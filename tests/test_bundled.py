"""The bundled lite models: they load offline, find the astronaut's face, and their recorded Helen-test NME is
what a fresh evaluation measures (the README quotes these figures)."""

import json
from pathlib import Path

import numpy as np
import pytest

import flzoo
from flzoo.registry import list_models

BUNDLED = [m["name"] for m in list_models() if m["available"] and not m["hub_repo"]]


def test_the_default_and_every_variant_s_best_model_are_bundled():
    from flzoo.registry import default_name, index

    assert default_name() in BUNDLED and set(index()["best"].values()) <= set(BUNDLED)


def test_bundled_weights_files_stay_small():
    from flzoo.registry import MAX_BUNDLED_BYTES, resolve

    sizes = {name: (Path(resolve(name)) / "model.safetensors").stat().st_size for name in BUNDLED}
    assert max(sizes.values()) <= MAX_BUNDLED_BYTES, sizes


REFERENCE = json.loads((Path(__file__).parent / "reference" / "preset_points.json").read_text())


@pytest.mark.parametrize("name", sorted(REFERENCE["points"]))
def test_presets_predict_the_points_they_predicted_before_the_refactors(name):
    """Re-keyed files, moved folders and reshaped code must not move a bundled model's points (0.01 px)."""
    from skimage import data

    from flzoo.data.crop import crop_matrix, warp
    from flzoo.registry import resolve
    from flzoo.weights import load_model

    model = load_model(resolve(name))
    size = model.input_size
    crops = np.stack([warp(data.astronaut(), crop_matrix(cx, cy, side, size), size)
                      for cx, cy, side in REFERENCE["crops"]]).astype(np.float32)
    np.testing.assert_allclose(model.predict_points(crops), REFERENCE["points"][name], atol=0.01)


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_model_predicts_a_face_shape_on_the_astronaut(name, monkeypatch):
    from skimage import data

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # bundled weights need no Hub
    from flzoo.registry import default_name

    # the default model as the main job runs it (exported, runtime "auto"); the others in Keras, since each
    # export costs 10-30 s and the export path is tests/test_runtime.py's
    runtime = "auto" if name == default_name() else "keras"
    faces = flzoo.load(name, runtime=runtime).predict(data.astronaut())
    assert len(faces) == 1
    points = np.asarray(faces[0]["points"])
    x0, y0, x1, y1 = faces[0]["box"]
    assert points.shape == (68, 2)
    # Her face spans about x 175-265, y 85-175 in the 512 x 512 photo.
    assert 160 < points[:, 0].min() and points[:, 0].max() < 285
    assert 70 < points[:, 1].min() and points[:, 1].max() < 200
    outer_left, outer_right = points[36], points[45]
    nose_tip, mouth_top, chin = points[30], points[51], points[8]
    assert outer_left[0] + 20 < outer_right[0]  # image-left eye corner is left of the other
    assert max(outer_left[1], outer_right[1]) < nose_tip[1] < mouth_top[1] < chin[1]


@pytest.mark.data
@pytest.mark.parametrize("name", BUNDLED)
def test_recorded_helen_nme_matches_a_fresh_evaluation(name, data_root):
    from flzoo.data.datasets import discover
    from flzoo.evaluate import evaluate_faces
    from flzoo.registry import describe, get_entry

    recorded = describe(get_entry(name))
    assert recorded["nme_subset"] == "helen_test"
    faces = {"helen_test": discover(data_root)["helen_test"]}
    # recorded figures are the network alone (tools/bundle_run.py); Keras, the reference runtime, which the
    # exported ones match to 0.05 px (an export per model would cost 10-30 s here)
    landmarker = flzoo.load(name, flip=False, runtime="keras")
    fresh = evaluate_faces(landmarker, faces, boxes="gt", progress=False)["summary"]["helen_test"]["nme"]
    assert fresh == pytest.approx(recorded["nme"], abs=5e-4)


# What the README says flzoo.load() scores on Helen test with its defaults (test-time flip, BlazeFace boxes and the
# refinement pass for "detector"), as a user runs it (runtime "auto").
DEFAULT_PIPELINE_NME = {"gt": 0.0333, "detector": 0.0333}


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("boxes", sorted(DEFAULT_PIPELINE_NME))
def test_the_default_pipeline_scores_what_the_readme_says(boxes, data_root):
    from flzoo.data.datasets import discover
    from flzoo.evaluate import evaluate_faces

    faces = {"helen_test": discover(data_root)["helen_test"]}
    summary = evaluate_faces(flzoo.load(), faces, boxes=boxes, progress=False)["summary"]["helen_test"]
    assert summary["nme"] == pytest.approx(DEFAULT_PIPELINE_NME[boxes], abs=5e-4)
