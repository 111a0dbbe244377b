"""Confidence (flzoo.confidence): present and in [0, 1] for every bundled model, failures ranked below successes,
the runtime's scored graph agrees with Keras, and the evaluation metrics (AUROC, confident-90% NME)."""

import json

import numpy as np
import pytest

from flzoo.registry import is_available, table

BUNDLED = [name for name, entry in table().items() if is_available(entry)]
BOX = (176, 85, 264, 172)  # the astronaut's face (landmark-box estimate)


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    return data.astronaut()


def _check(face):
    assert 0.0 <= face["confidence"] <= 1.0
    pc = np.asarray(face["point_confidence"])
    assert pc.shape == (68,) and pc.dtype == np.float32 and np.all((pc >= 0) & (pc <= 1))


@pytest.mark.parametrize("name", BUNDLED)
def test_confidence_present_and_in_range_for_every_bundled_model(name, astronaut):
    import flzoo

    lm = flzoo.load(name, detector=None, runtime="keras")
    (face,) = lm.predict(astronaut, boxes=[BOX])
    _check(face)
    if not name.startswith("heatmap_reg"):  # its regressed peaks stay low (0.37 here): it fails 89% of Helen faces (README)
        assert face["confidence"] > 0.5  # a clear frontal face: not flagged (flzoo.video.MIN_CONFIDENCE)
    scored = lm.predict_scored_with_matrices(astronaut, [lm.box_matrix(BOX)])
    assert scored["points"].shape == (1, 68, 2) and scored["confidence"].shape == (1,)
    empty = lm.predict_scored_with_matrices(astronaut, np.zeros((0, 2, 3)))
    assert empty["points"].shape == (0, 68, 2) and empty["confidence"].shape == (0,)


def test_no_flip_and_detector_paths_carry_confidence(astronaut):
    import flzoo

    for face in flzoo.load("hybrid", flip=False, runtime="keras").predict(astronaut):
        _check(face)


def test_failures_rank_below_successes(astronaut):
    """The real face from a good box outranks every crafted failure: a box half a face off, a box on the
    background, a blank photo, noise."""
    import flzoo

    lm = flzoo.load(detector=None)
    x0, y0, x1, y1 = BOX
    w = x1 - x0
    rng = np.random.default_rng(0)
    cases = {
        "good": (astronaut, BOX),
        "half a face off": (astronaut, (x0 + w * 0.6, y0 + w * 0.6, x1 + w * 0.6, y1 + w * 0.6)),
        "background": (astronaut, (380, 360, 480, 460)),
        "blank": (np.zeros((300, 300, 3), np.uint8), (100, 100, 200, 200)),
        "noise": (rng.integers(0, 256, (300, 300, 3)).astype(np.uint8), (100, 100, 200, 200)),
    }
    conf = {k: lm.predict(img, boxes=[box])[0]["confidence"] for k, (img, box) in cases.items()}
    bad = {k: v for k, v in conf.items() if k != "good"}
    assert conf["good"] > max(bad.values()), conf
    assert max(bad.values()) < 0.5, conf  # below the video tracker's re-detection threshold


def test_runtime_scored_graph_matches_keras(astronaut):
    import flzoo

    keras_face = flzoo.load("pwc_disc", detector=None, runtime="keras").predict(astronaut, boxes=[BOX])[0]
    fast = flzoo.load("pwc_disc", detector=None, runtime="litert")
    assert fast.runtime == "litert" and fast.model.scored
    face = fast.predict(astronaut, boxes=[BOX])[0]
    assert np.abs(face["points"] - keras_face["points"]).max() < 0.05
    assert np.abs(face["point_confidence"] - keras_face["point_confidence"]).max() < 0.01
    assert abs(face["confidence"] - keras_face["confidence"]) < 0.01


def test_map_confidence_is_the_mass_around_the_peak():
    """A synthetic distribution map: all mass in the 3x3 window -> 1; spread over the whole map -> small."""
    import keras

    from flzoo.confidence import map_point_confidence

    maps = np.zeros((2, 16, 16, 68), np.float32)
    maps[0, 7:10, 4:7, :] = 1 / 9  # exactly the window around the peak (any cell of it is a peak)
    maps[0, 8, 5, :] += 1e-3
    maps[1] = 1 / 256  # uniform
    maps[1, 3, 3, :] += 1e-3
    conf = keras.ops.convert_to_numpy(map_point_confidence(maps, "distribution"))
    assert conf.shape == (2, 68)
    np.testing.assert_allclose(conf[0], 1.0, atol=2e-3)
    np.testing.assert_allclose(conf[1], 9 / 256, atol=2e-3)


def test_auroc_and_confident_nme_by_hand():
    from flzoo.confidence import auroc, confidence_summary, confident_nme

    assert auroc([0.9, 0.8, 0.1], [False, False, True]) == 1.0
    assert auroc([0.1, 0.8, 0.9], [False, False, True]) == 0.0
    assert auroc([0.5, 0.5], [False, True]) == 0.5  # a tie counts half
    assert np.isnan(auroc([0.5, 0.6], [False, False]))
    # one success above the failure, one below: 1/2
    assert auroc([0.9, 0.2, 0.5], [False, False, True]) == 0.5
    nmes = np.arange(1, 11) / 100.0  # 0.01 .. 0.10
    conf = 1 - nmes  # perfectly ranked: the 9 most confident are the 9 best
    assert confident_nme(nmes, conf) == pytest.approx(np.mean(nmes[:9]))
    s = confidence_summary(list(nmes), list(conf))
    assert s["confidence_auroc"] == 1.0 and s["nme_confident90"] == pytest.approx(0.05)


def test_eval_writes_confidence_per_face_and_auroc_per_subset(data_root, tmp_path):
    from click.testing import CliRunner

    from flzoo.cli import main

    out = tmp_path / "eval"
    result = CliRunner().invoke(main, ["eval", "--model", "hybrid_disc", "--data", str(data_root), "--subsets",
                                       "helen_test", "--limit", "40", "--out", str(out)])
    assert result.exit_code == 0, result.output
    res = json.loads((out / "results.json").read_text())
    for face in res["faces"]:
        assert 0 <= face["confidence"] <= 1 and len(face["point_confidence"]) == 68
    summary = res["summary"]["helen_test"]
    assert "confidence_auroc" in summary and summary["nme_confident90"] <= summary["nme"] + 1e-9
    assert "conf. AUROC" in (out / "table.md").read_text()


def test_predict_cli_json_has_confidence(tmp_path):
    from click.testing import CliRunner

    from flzoo.cli import main

    js = tmp_path / "astro.json"
    result = CliRunner().invoke(main, ["predict", "-o", str(tmp_path / "a.png"), "--json", str(js)])
    assert result.exit_code == 0, result.output
    (face,) = json.loads(js.read_text())["images"][0]["faces"]
    assert 0.5 < face["confidence"] <= 1 and len(face["point_confidence"]) == 68
