import numpy as np
import pytest

from flzoo.data.pts import read_pts, write_pts


def test_round_trip_is_exact_and_one_based_on_disk(tmp_path):
    points = np.random.default_rng(0).uniform(-5, 900, (68, 2)).astype(np.float32)
    path = tmp_path / "face.pts"
    write_pts(path, points)
    lines = path.read_text().splitlines()
    assert lines[:3] == ["version: 1", "n_points:  68", "{"] and lines[-1] == "}"
    x, y = map(float, lines[3].split())
    assert abs(x - (points[0, 0] + 1)) < 1e-5 and abs(y - (points[0, 1] + 1)) < 1e-5
    back = read_pts(path)
    assert back.dtype == np.float32 and back.shape == (68, 2)
    np.testing.assert_allclose(back, points, atol=1e-4)


def test_header_is_optional(tmp_path):
    path = tmp_path / "bare.pts"
    path.write_text("\n".join(f"{i + 1} {2 * i + 1}.5" for i in range(68)) + "\n")
    points = read_pts(path)
    assert points[0].tolist() == [0.0, 0.5] and points[67].tolist() == [67.0, 134.5]


def _pts_text(rows, header=True):
    head = "version: 1\nn_points:  68\n{\n" if header else ""
    return head + "\n".join(rows) + ("\n}\n" if header else "\n")


@pytest.mark.parametrize("rows, n_points, expect", [
    (["1 2"] * 67, "68", r"has 67 points, expected 68"),
    (["1 2"] * 69, "68", r"has 69 points, expected 68"),
    (["1 2"] * 30 + ["1 abc"] + ["1 2"] * 37, "68", r"bad\.pts:34: expected two numbers"),
    (["1 2"] * 10 + ["1 2 3"] + ["1 2"] * 57, "68", r"bad\.pts:14: expected two numbers"),
    (["1 2"] * 5 + ["nan 2"] + ["1 2"] * 62, "68", r"bad\.pts:9: point 5 is not finite"),
    (["1 2"] * 68, "49", r"bad\.pts:2: n_points is 49, expected 68"),
])
def test_malformed_files_name_file_and_line(tmp_path, rows, n_points, expect):
    path = tmp_path / "bad.pts"
    path.write_text(_pts_text(rows).replace("n_points:  68", f"n_points:  {n_points}"))
    with pytest.raises(ValueError, match=expect):
        read_pts(path)


def test_text_after_closing_brace_and_binary_files_are_rejected(tmp_path):
    path = tmp_path / "bad.pts"
    path.write_text(_pts_text(["1 2"] * 68) + "3 4\n")
    with pytest.raises(ValueError, match=r"bad\.pts:73: unexpected '3 4' after the closing"):
        read_pts(path)
    path.write_bytes(b"\xff\xd8\xff\xe0 JFIF")
    with pytest.raises(ValueError, match=r"bad\.pts: not a text \.pts file"):
        read_pts(path)


def test_write_refuses_wrong_shapes_and_nan(tmp_path):
    with pytest.raises(ValueError, match=r"out\.pts: points have shape \(67, 2\)"):
        write_pts(tmp_path / "out.pts", np.zeros((67, 2)))
    bad = np.zeros((68, 2))
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_pts(tmp_path / "out.pts", bad)


@pytest.mark.data
def test_real_annotation_lies_on_its_image(data_root):
    """Needs the real 300-W copy: ``data_root`` skips with the reason when it is absent."""
    import cv2

    pts = read_pts(data_root / "helen" / "testset" / "296814969_3.pts")
    h, w = cv2.imread(str(data_root / "helen" / "testset" / "296814969_3.jpg")).shape[:2]
    assert np.all(pts >= 0) and np.all(pts[:, 0] < w) and np.all(pts[:, 1] < h)
