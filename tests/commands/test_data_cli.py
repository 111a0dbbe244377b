import json
import shutil

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from data_fakes import face_points, write_cofw, write_face, write_tree
from flzoo.cli import main


def _run(*args):
    return CliRunner().invoke(main, ["data", *args], catch_exceptions=False)


def _break(folder):
    """Break a copy in the three ways of the issue, plus points far outside the image."""
    pts = sorted(folder.glob("*.pts"))
    lines = pts[0].read_text().splitlines()
    pts[0].write_text("\n".join(lines[:40]) + "\n")  # truncated .pts
    image = next(p for p in folder.iterdir() if p.stem == pts[1].stem and p.suffix != ".pts")
    image.unlink()  # deleted image
    fake = next(p for p in folder.iterdir() if p.stem == pts[2].stem and p.suffix != ".pts")
    fake.write_text("<html>not a jpeg</html>")  # non-image file named .jpg
    return pts[0].name, image.name, fake.name


def test_check_counts_a_clean_tree(tmp_path):
    counts = write_tree(tmp_path)
    write_cofw(tmp_path, n=2)
    result = _run("check", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] and report["errors"] == []
    assert {k: v["faces"] for k, v in report["subsets"].items()} == {**counts, "cofw": 2}
    assert report["subsets"]["helen_train"]["folder"] == "helen/trainset"
    text = _run("check", str(tmp_path))
    assert text.exit_code == 0 and "helen/trainset" in text.output and "0 errors" in text.output


def test_check_names_every_bad_file_and_exits_1(tmp_path):
    write_tree(tmp_path, ["afw", "helen_test"])
    write_face(tmp_path / "afw", "999_1")
    truncated, deleted, fake = _break(tmp_path / "afw")
    far = face_points(100, 110, 80) + [0, 400]  # the jaw and mouth far below a 220 px image
    write_face(tmp_path / "helen" / "testset", "77_1", points=far)
    (tmp_path / "helen" / "testset" / "orphan.jpg").write_bytes(b"")
    cut = tmp_path / "helen" / "testset" / "2968560214_1.jpg"
    cut.write_bytes(cut.read_bytes()[:-300])  # decodes, but the bottom is missing
    result = _run("check", str(tmp_path), "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    problems = {e["file"]: e["problem"] for e in report["errors"]}
    assert problems["afw/" + truncated] == "malformed .pts: has 37 points, expected 68"
    assert any(f.startswith("afw/" + deleted.rsplit(".", 1)[0]) and "image missing" in p
               for f, p in problems.items())
    assert "unreadable image" in problems["afw/" + fake]
    assert "outside the 200x220 image" in problems["helen/testset/77_1.pts"]
    # OpenCV 5 refuses a truncated JPEG; OpenCV 4 decodes it with a grey bottom, caught by the marker test
    assert problems["helen/testset/2968560214_1.jpg"] in (
        "truncated JPEG (no end-of-image marker)",
        "unreadable image: not a readable image (expected JPEG/PNG/BMP data)")
    assert len(report["errors"]) == 5 and report["subsets"]["afw"] == {"folder": "afw", "faces": 4, "bad": 3}
    assert any(w["file"] == "helen/testset/orphan.jpg" for w in report["warnings"])
    text = _run("check", str(tmp_path))
    assert text.exit_code == 1
    for name in (truncated, deleted.rsplit(".", 1)[0], fake, "77_1.pts"):
        assert name in text.output


def test_check_of_an_empty_or_missing_folder_fails(tmp_path):
    result = _run("check", str(tmp_path), "--json")
    assert result.exit_code == 1 and "no faces found" in json.loads(result.output)["errors"][0]["problem"]
    assert _run("check", str(tmp_path / "missing")).exit_code == 1


def test_check_reports_the_real_copy(data_root):
    result = _run("check", str(data_root), "--json")
    assert result.exit_code == 0, result.output[-2000:]
    report = json.loads(result.output)
    assert {k: v["faces"] for k, v in report["subsets"].items()} == {
        "afw": 337, "helen_train": 870, "lfpw_train": 805, "helen_test": 330}
    assert report["errors"] == []


def test_check_names_bad_files_in_a_broken_real_copy(data_root, tmp_path):
    source = data_root / "helen" / "testset"
    target = tmp_path / "helen" / "testset"
    target.mkdir(parents=True)
    for pts in sorted(source.glob("*.pts"))[:4]:
        shutil.copy(pts, target)
        shutil.copy(pts.with_suffix(".jpg"), target)
    truncated, deleted, fake = _break(target)
    result = _run("check", str(tmp_path))
    assert result.exit_code == 1
    assert f"{truncated}: malformed .pts" in result.output
    assert f"{deleted.rsplit('.', 1)[0]}.pts: image missing" in result.output
    assert f"{fake}: unreadable image" in result.output
    assert "3 errors" in result.output


def test_show_writes_a_grid(tmp_path):
    write_tree(tmp_path / "data", ["afw", "helen_test"])
    out = tmp_path / "grid.png"
    result = _run("show", str(tmp_path / "data"), "-o", str(out), "-n", "4", "--size", "64", "--columns", "2")
    assert result.exit_code == 0, result.output
    image = cv2.imread(str(out))
    assert image.shape == (2 * (64 + 16 + 4) + 4, 2 * (64 + 4) + 4, 3)
    # points are drawn in colour on a grey face
    saturation = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)[..., 1]
    assert np.count_nonzero(saturation > 150) > 100
    result = _run("show", str(tmp_path / "data"), "-o", str(tmp_path / "aug.png"), "--augment", "--subset",
                  "afw", "-n", "3", "--size", "64")
    assert result.exit_code == 0 and (tmp_path / "aug.png").is_file()
    one = _run("show", str(tmp_path / "data" / "afw"), "-o", str(tmp_path / "one.png"), "--size", "64")
    assert one.exit_code == 0 and "(3 faces)" in one.output  # a plain folder of faces works too


@pytest.mark.parametrize("args, message", [
    (["--subset", "ibug"], "--subset ibug: not found"),
    (["-o", "grid.jpg"], "expected a .png file name"),
])
def test_show_usage_errors(tmp_path, args, message):
    write_tree(tmp_path / "data", ["afw"])
    argv = ["data", "show", str(tmp_path / "data"), "-o", str(tmp_path / "grid.png")] + args
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2 and message in result.output


def test_truncated_jpeg_marker_check(tmp_path):
    from flzoo.data.check import jpeg_truncated

    image = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.jpg"), image)
    cv2.imwrite(str(tmp_path / "a.png"), image)
    assert not jpeg_truncated(tmp_path / "a.jpg") and not jpeg_truncated(tmp_path / "a.png")
    (tmp_path / "b.jpg").write_bytes((tmp_path / "a.jpg").read_bytes()[:-200])
    assert jpeg_truncated(tmp_path / "b.jpg")
    (tmp_path / "c.jpg").write_bytes((tmp_path / "a.jpg").read_bytes() + b"\x00" * 10)  # padding is fine
    assert not jpeg_truncated(tmp_path / "c.jpg")
