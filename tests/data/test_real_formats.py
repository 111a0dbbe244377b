"""The loaders on real files in the less common layouts (``../shared/data/formats``: two 300-W competition-test
faces, all 507 COFW-68 test annotations and two COFW test photos as JPEG). Skips when that folder is absent."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from flzoo.cli import main
from flzoo.paths import REPO_ROOT

FORMATS = REPO_ROOT.parent / "shared" / "data" / "formats"


@pytest.fixture(scope="module")
def formats():
    if not (FORMATS / "300W" / "01_Indoor").is_dir():
        pytest.skip(f"real format samples not found at {FORMATS}")
    return FORMATS


def test_competition_test_faces_are_discovered_with_0_based_points(formats):
    from flzoo.data import discover
    from flzoo.data.datasets import read_image

    faces = discover(formats, subsets=["300w_indoor"])["300w_indoor"]
    assert [f.image_path.name for f in faces] == ["indoor_020.png", "indoor_029.png"]
    first_line = (formats / "300W/01_Indoor/indoor_020.pts").read_text().splitlines()[3].split()
    np.testing.assert_allclose(faces[0].points[0], np.array(first_line, float) - 1, atol=1e-4)  # 1-based file
    for face in faces:
        h, w = read_image(face.image_path).shape[:2]
        assert face.points.shape == (68, 2) and (face.points >= -1).all()
        assert (face.points[:, 0] < w).all() and (face.points[:, 1] < h).all()


def test_all_507_cofw68_annotations_read(formats):
    from flzoo.data.datasets import read_cofw_points

    files = sorted((formats / "COFW68_Data/test_annotations").glob("*_points.mat"))
    assert len(files) == 507
    occluded = 0
    for path in files:
        points, occ = read_cofw_points(path)
        assert points.shape == (68, 2) and np.isfinite(points).all() and occ.shape == (68,)
        occluded += int(occ.sum())
    assert 0 < occluded < 507 * 68  # COFW marks a real share of the points occluded


def test_cofw_jpegs_fit_their_annotations(formats):
    from flzoo.data.check import check_points
    from flzoo.data.datasets import read_cofw_points, read_image

    for i in (421, 460):
        image = read_image(formats / "cofw_test_images" / f"{i}.jpg")
        points, _ = read_cofw_points(formats / f"COFW68_Data/test_annotations/{i}_points.mat")
        found = check_points(points, image.shape[1], image.shape[0])
        assert found is None or found[0] == "warning", found


def test_data_check_reports_the_layouts_and_the_missing_cofw_images(formats):
    result = CliRunner().invoke(main, ["data", "check", str(formats), "--json"])
    assert result.exit_code == 1  # COFW annotations without COFW_test_color.mat is an error
    report = json.loads(result.output)
    assert report["subsets"]["300w_indoor"]["faces"] == 2 and report["subsets"]["300w_indoor"]["bad"] == 0
    assert any("COFW_test_color.mat" in e["problem"] for e in report["errors"])


def test_eval_on_the_competition_test_pair(formats, tmp_path):
    result = CliRunner().invoke(main, ["eval", "--model", "hybrid_disc", "--data", str(formats),
                                       "--subsets", "300w_indoor", "--out", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert len(results["faces"]) == 2 and results["summary"]["300w_indoor"]["nme"] < 0.1
