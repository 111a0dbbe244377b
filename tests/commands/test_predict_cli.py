"""`flzoo predict` and `flzoo list`."""

import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from flzoo.models import build
    from flzoo.weights import save_model

    return save_model(build("hybrid", backbone="lite", input_size=64, width=0.25),
                      tmp_path_factory.mktemp("cli") / "tiny")


def _run(args):
    from click.testing import CliRunner

    from flzoo.cli import main

    return CliRunner().invoke(main, args)


def test_no_photo_runs_on_the_astronaut_and_writes_overlay_and_json(model_dir, tmp_path):
    import cv2
    from skimage import data

    out, js = tmp_path / "astro.png", tmp_path / "astro.json"
    result = _run(["predict", "--model", str(model_dir), "-o", str(out), "--json", str(js)])
    assert result.exit_code == 0, result.output
    assert "astronaut: 1 face(s)" in result.output
    doc = json.loads(js.read_text())
    assert doc["model"] == str(model_dir) and doc["refine"] == 1
    (image,) = doc["images"]
    assert image["image"] == "astronaut" and (image["width"], image["height"]) == (512, 512)
    (face,) = image["faces"]
    assert np.asarray(face["points"]).shape == (68, 2) and len(face["box"]) == 4 and face["score"] > 0.5
    overlay = cv2.imread(str(out))[:, :, ::-1]
    assert overlay.shape == (512, 512, 3)
    changed = np.any(overlay != data.astronaut(), axis=-1)
    x0, y0, x1, y1 = (round(v) for v in face["box"])
    assert changed[y0, x0:x1].mean() > 0.9  # the box's top edge is drawn
    for x, y in np.round(face["points"]).astype(int):
        if 0 <= x < 512 and 0 <= y < 512:
            assert changed[y, x]  # every visible point is drawn


def test_several_photos_no_face_and_unreadable(model_dir, tmp_path):
    import cv2

    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((120, 160, 3), 200, np.uint8))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    out_dir = tmp_path / "out"
    result = _run(["predict", str(blank), str(broken), "--model", str(model_dir), "--out-dir", str(out_dir),
                   "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 1
    assert f"no face found in {blank}" in result.output
    assert f"{broken}: not a readable image" in result.output
    assert (out_dir / "blank_landmarks.png").is_file()
    doc = json.loads((tmp_path / "r.json").read_text())
    assert [(i["image"], i["faces"]) for i in doc["images"]] == [(str(blank), [])]


def test_usage_errors(model_dir, tmp_path):
    result = _run(["predict", "a.jpg", "b.jpg", "--model", str(model_dir), "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "-o/--output takes one photo, got 2" in result.output
    result = _run(["predict", "--model", "no-such-model"])
    assert result.exit_code == 2 and "--model: model 'no-such-model' is not in the flzoo registry" in result.output


def test_detector_option(model_dir, tmp_path):
    out, js = tmp_path / "astro.png", tmp_path / "astro.json"
    for name in ("blazeface", "dlib"):
        result = _run(["predict", "--model", str(model_dir), "--detector", name, "-o", str(out), "--json", str(js)])
        assert result.exit_code == 0, result.output
        assert "astronaut: 1 face(s)" in result.output and json.loads(js.read_text())["detector"] == name
    result = _run(["predict", "--model", str(model_dir), "--detector", "blazefac", "-o", str(out)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--detector: detector='blazefac': not a known detector (did you mean 'blazeface'?)" in result.output


def test_list_shows_the_registry():
    result = _run(["list"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["name", "also", "tag", "backbone", "input", "params", "NME", "weights"]
    from flzoo.registry import default_name, index

    default = default_name()
    variant = default.split(".")[0]
    assert index()["best"][variant] == default
    assert any(line.split()[:3] == [default, f"{variant},", "(default)"] for line in lines)
    best_pwc = index()["best"]["pwc"]
    assert any(line.split()[:2] == [best_pwc, "pwc"] for line in lines)  # the best is the bare name's model
    from flzoo.registry import table

    assert lines.index("") == 1 + len(table()) and "Helen test" in lines[-1]  # the table, then what it means
    doc = json.loads(_run(["list", "pwc*", "--json"]).output)
    assert {e["variant"] for e in doc} == {"pwc", "pwc_disc"} and "pwc.lite" in [e["name"] for e in doc]
    assert "no model matches" in _run(["list", "zzz"]).output
