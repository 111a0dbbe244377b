"""Tracking through frames (flzoo.video), the One-Euro filter (flzoo.smoothing) and `flzoo predict VIDEO`.

Frames are synthetic: the astronaut photo shifted / rotated a little per frame, a "cut" to another face (the
mirrored astronaut at another place in the frame), blank frames with no face."""

import json

import numpy as np
import pytest

H = W = 512


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    return data.astronaut()


def moved(image, t, dx=2.0, angle=0.5):
    """The photo shifted by ``t * dx`` px and rotated by ``t * angle`` degrees about its centre."""
    import cv2

    m = cv2.getRotationMatrix2D((W / 2, H / 2), t * angle, 1.0)
    m[0, 2] += t * dx
    return cv2.warpAffine(image, m, (W, H), borderMode=cv2.BORDER_REPLICATE)


def other_face(image):
    """Another face somewhere else: the mirrored astronaut, shifted so its face sits ~170 px right and below."""
    import cv2

    m = np.float32([[1, 0, 60], [0, 1, 170]])
    return cv2.warpAffine(np.ascontiguousarray(image[:, ::-1]), m, (W, H))


class CountingDetector:
    def __init__(self):
        from flzoo.detect import DlibDetector

        self.inner, self.calls = DlibDetector(), 0

    def __call__(self, image):
        self.calls += 1
        return self.inner(image)


@pytest.fixture(scope="module")
def landmarker():
    import flzoo

    return flzoo.load(detector=CountingDetector())


def _centre(face):
    return np.asarray(face["points"]).mean(axis=0)


def test_tracking_keeps_the_id_and_does_not_detect_every_frame(landmarker, astronaut):
    frames = [moved(astronaut, t) for t in range(12)]
    landmarker.detector.calls = 0
    result = list(landmarker.track(frames, detect_every=100))
    assert len(result) == 12 and all(len(faces) == 1 for faces in result)
    assert {faces[0]["id"] for faces in result} == {0}
    assert landmarker.detector.calls == 1  # the first frame only
    for t, faces in enumerate(result):  # the face moves with the frames (2 px per frame to the right)
        face = faces[0]
        assert set(face) >= {"id", "points", "box", "score", "confidence", "point_confidence"}
        assert 0.5 <= face["confidence"] <= 1 and face["point_confidence"].shape == (68,)
    still = landmarker.predict(frames[-1])[0]["points"]
    unsmoothed = list(landmarker.track(frames, detect_every=100, smooth=False))[-1][0]["points"]
    assert np.abs(_centre({"points": unsmoothed}) - still.mean(axis=0)).max() < 2.0
    import cv2

    m = cv2.getRotationMatrix2D((W / 2, H / 2), 11 * 0.5, 1.0)  # where frame 11 moved the first face
    m[0, 2] += 11 * 2.0
    expected = m[:, :2] @ _centre(result[0][0]) + m[:, 2]
    assert np.linalg.norm(_centre({"points": unsmoothed}) - expected) < 3


def test_detects_every_n_frames(landmarker, astronaut):
    landmarker.detector.calls = 0
    list(landmarker.track([moved(astronaut, t) for t in range(10)], detect_every=4))
    assert landmarker.detector.calls == 3  # frames 0, 4, 8


def test_a_cut_to_another_face_is_re_detected_with_a_new_id(landmarker, astronaut):
    second = other_face(astronaut)
    frames = [astronaut] * 4 + [second] * 4
    result = list(landmarker.track(frames, detect_every=100, smooth=False))
    first_ids = {f["id"] for faces in result[:4] for f in faces}
    assert first_ids == {0}
    after = result[-1]
    assert len(after) == 1 and after[0]["id"] != 0  # the old face was dropped, the new one found
    expected = landmarker.predict(second)[0]["points"]
    assert np.abs(np.asarray(after[0]["points"]) - expected).mean() < 2.0


def test_frames_with_no_face(landmarker, astronaut):
    blank = np.zeros_like(astronaut)
    frames = [astronaut] * 3 + [blank] * 3 + [astronaut] * 3
    result = list(landmarker.track(frames))
    assert [len(faces) for faces in result] == [1, 1, 1, 0, 0, 0, 1, 1, 1]
    assert result[0][0]["id"] != result[-1][0]["id"]  # a face that comes back is a new track
    assert list(landmarker.track([blank] * 3)) == [[], [], []]


def test_bad_options_and_frames(landmarker, astronaut):
    with pytest.raises(ValueError, match="detect_every"):
        list(landmarker.track([astronaut], detect_every=0))
    with pytest.raises(ValueError, match="min_confidence"):
        list(landmarker.track([astronaut], min_confidence=2))
    with pytest.raises(ValueError, match="frame 1"):
        list(landmarker.track([astronaut, np.zeros((4, 4), np.float32)]))


def test_one_euro_filter():
    from flzoo.smoothing import OneEuroFilter

    rng = np.random.default_rng(0)
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    noisy = 5.0 + rng.normal(0, 1, (300, 68, 2))
    out = np.array([f.filter(x, 1 / 30) for x in noisy])
    assert np.allclose(out[0], noisy[0])  # the first sample passes
    assert np.std(np.diff(out[100:], axis=0)) < 0.3 * np.std(np.diff(noisy[100:], axis=0))  # jitter removed
    assert abs(out[100:].mean() - 5.0) < 0.05
    # a ramp: with beta the lag (in samples) shrinks
    ramp = np.arange(60, dtype=np.float64)[:, None] * np.ones((1, 2))

    def lag(beta):
        g = OneEuroFilter(1.0, beta)
        y = np.array([g.filter(x, 1 / 30) for x in ramp])
        return float(np.mean(ramp[-10:, 0] - y[-10:, 0]))  # samples behind, at 1 unit per sample

    assert lag(1.0) < lag(0.0) / 3
    for bad in ({"min_cutoff": 0}, {"beta": -1}, {"d_cutoff": float("nan")}):
        with pytest.raises(ValueError):
            OneEuroFilter(**bad)


def _write_video(path, frames, fps=10.0):
    from flzoo.video import VideoWriter

    w = VideoWriter(path, fps, frames[0].shape[1], frames[0].shape[0])
    for f in frames:
        w.write(f)
    w.close()


def _run(args):
    from click.testing import CliRunner

    from flzoo.cli import main

    return CliRunner().invoke(main, args)


def test_video_cli_writes_json_and_a_playable_overlay(astronaut, tmp_path):
    import cv2

    video = tmp_path / "clip.mp4"
    _write_video(video, [moved(astronaut, t) for t in range(8)] + [np.zeros_like(astronaut)] * 2)
    out, js = tmp_path / "overlay.mp4", tmp_path / "clip.json"
    result = _run(["predict", str(video), "-o", str(out), "--json", str(js), "--beta", "3"])
    assert result.exit_code == 0, result.output
    doc = json.loads(js.read_text())
    assert doc["video"] == str(video) and doc["fps"] == pytest.approx(10.0)
    assert [f["frame"] for f in doc["frames"]] == list(range(10))
    assert doc["frames"][3]["time_s"] == pytest.approx(0.3)
    assert [len(f["faces"]) for f in doc["frames"]] == [1] * 8 + [0, 0]
    face = doc["frames"][5]["faces"][0]
    assert face["id"] == 0 and len(face["points"]) == 68 and 0 <= face["confidence"] <= 1
    assert len(face["point_confidence"]) == 68
    cap = cv2.VideoCapture(str(out))  # playable: OpenCV decodes every frame back
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 10
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left
    # --no-smooth is accepted and changes the points
    result = _run(["predict", str(video), "-o", str(tmp_path / "raw.mp4"), "--json", str(tmp_path / "raw.json"),
                   "--no-smooth"])
    assert result.exit_code == 0, result.output
    raw = json.loads((tmp_path / "raw.json").read_text())
    assert raw["smooth"] is False and raw["frames"][5]["faces"][0]["points"] != face["points"]


def test_video_cli_errors(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_text("not a video")
    result = _run(["predict", str(bad), "-o", str(tmp_path / "o.mp4")])
    assert result.exit_code != 0 and "broken.mp4" in result.output and "cannot read it as a video" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "o.mp4").exists()
    result = _run(["predict", str(bad), "-o", str(bad)])
    assert result.exit_code != 0 and "never writes over an input" in result.output
    assert bad.read_text() == "not a video"
    result = _run(["predict", str(bad), "-o", str(tmp_path / "o.png")])
    assert result.exit_code != 0 and ".mp4 or .avi" in result.output
    result = _run(["predict", str(tmp_path / "missing.mp4")])
    assert result.exit_code != 0 and "missing.mp4" in result.output and "no such file" in result.output
