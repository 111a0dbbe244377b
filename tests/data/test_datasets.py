import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from data_fakes import LAYOUT, cofw_image, write_cofw, write_face, write_tree
from flzoo.data.datasets import (SUBSETS, TEST_SUBSETS, TRAIN_SUBSETS, Face, discover, load_image, photo_id,
                                 split_train_val, validation_faces)


def test_discovers_every_official_layout(tmp_path):
    counts = write_tree(tmp_path)
    faces = discover(tmp_path)
    assert list(faces) == [s for s in SUBSETS if s in counts]  # paper order, COFW absent
    assert {s: len(v) for s, v in faces.items()} == counts
    for subset, items in faces.items():
        folder, stems, ext = LAYOUT[subset]
        assert [f.image_path.name for f in items] == sorted(s + ext for s in stems)
        assert all(f.subset == subset and f.points.shape == (68, 2) and f.image is None for f in items)
    helen = {f.image_path.stem: f.photo_id for f in faces["helen_train"]}
    assert helen["100040721_1"] == helen["100040721_2"] == "helen/100040721" != helen["232194_1"]
    lfpw = {f.photo_id for f in faces["lfpw_train"]}
    assert lfpw == {"lfpw/image_0001", "lfpw/image_0002"}
    assert [f.photo_id for f in faces["ibug"]] == ["ibug/image_003", "ibug/image_003", "ibug/image_004"]
    assert photo_id("300w_indoor", "indoor_001") == "300w/indoor_001"


def test_layout_names_are_case_insensitive_and_partial_trees_work(tmp_path):
    write_face(tmp_path / "300w" / "01_indoor", "indoor_001", ".png")
    write_face(tmp_path / "Helen" / "testset", "1_1")
    assert {s: len(v) for s, v in discover(tmp_path).items()} == {"helen_test": 1, "300w_indoor": 1}
    assert discover(tmp_path / "Helen") == {}  # a folder without any official layout below it


def test_missing_root_and_missing_image_and_bad_pts_are_named(tmp_path):
    with pytest.raises(ValueError, match="no-such-folder is not a folder"):
        discover(tmp_path / "no-such-folder")
    write_tree(tmp_path, ["afw"])
    (tmp_path / "afw" / "134212_1.jpg").unlink()
    with pytest.raises(ValueError, match=r"afw/134212_1\.pts: no image beside it"):
        discover(tmp_path)
    write_face(tmp_path / "afw", "134212_1")
    (tmp_path / "afw" / "111076519_2.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")
    with pytest.raises(ValueError, match=r"afw/111076519_2\.pts: has 1 points, expected 68"):
        discover(tmp_path)


def test_load_image_is_rgb_and_refuses_non_images(tmp_path):
    bgr = np.zeros((10, 12, 3), np.uint8)
    bgr[..., 2] = 255  # red in OpenCV's BGR order
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    image = load_image(Face(tmp_path / "red.png", np.zeros((68, 2), np.float32), "afw", "afw/red"))
    assert image.shape == (10, 12, 3) and image.dtype == np.uint8 and image[0, 0].tolist() == [255, 0, 0]
    (tmp_path / "fake.jpg").write_text("not a jpeg")
    with pytest.raises(ValueError, match=r"fake\.jpg: not a readable image"):
        load_image(tmp_path / "fake.jpg")
    with pytest.raises(ValueError, match=r"gone\.jpg: image file not found"):
        load_image(tmp_path / "gone.jpg")
    pixels = np.ones((4, 4, 3), np.uint8)
    assert load_image(Face(tmp_path / "x.mat", None, "cofw", "cofw/1", image=pixels)) is pixels


def _faces(n_photos, seed=0):
    rng = np.random.default_rng(seed)
    faces = []
    for p in range(n_photos):
        for k in range(int(rng.integers(1, 4))):  # 1..3 faces per photo
            faces.append(Face(f"{p}_{k + 1}.jpg", None, TRAIN_SUBSETS[p % 3], f"x/{p}"))
    return faces


def test_split_is_seeded_grouped_and_complete():
    faces = _faces(300)
    train, val = split_train_val(faces, 0.1, seed=0)
    assert len(train) + len(val) == len(faces)
    assert {id(f) for f in train}.isdisjoint(id(f) for f in val)
    assert {f.photo_id for f in train}.isdisjoint(f.photo_id for f in val)  # photos never straddle
    assert abs(len(val) - 0.1 * len(faces)) <= 3
    again = split_train_val(list(reversed(faces)), 0.1, seed=0)[1]
    assert {f.image_path for f in again} == {f.image_path for f in val}  # input order does not matter
    assert {f.image_path for f in split_train_val(faces, 0.1, seed=1)[1]} != {f.image_path for f in val}
    assert [f for f in faces if f in val] == val  # input order kept
    assert split_train_val(faces, 0.0)[1] == []


def test_split_refuses_test_faces_and_bad_fractions():
    faces = _faces(10) + [Face("t.jpg", None, "helen_test", "helen/t")]
    with pytest.raises(ValueError, match=r"training data only; got test subsets \['helen_test'\]"):
        split_train_val(faces)
    with pytest.raises(ValueError, match="val_fraction must be in"):
        split_train_val(_faces(10), 1.0)


def test_split_on_real_training_faces_keeps_helen_photos_together(data_root):
    faces = discover(data_root)
    train_faces = [f for s in TRAIN_SUBSETS for f in faces[s]]
    assert len(train_faces) == 2012
    train, val = split_train_val(train_faces, 0.1, seed=0)
    assert 195 <= len(val) <= 210 and {f.subset for f in val} == set(TRAIN_SUBSETS)
    assert {f.photo_id for f in train}.isdisjoint(f.photo_id for f in val)
    multi = {f.photo_id for f in train_faces if f.image_path.stem.endswith("_2")}
    assert multi, "the copy has multi-face photos"
    # the studies' validation faces are a default recipe's: the same 10%, seed 0, never a test face
    assert validation_faces(faces) == val


@pytest.mark.parametrize("v73", [True, False])
def test_cofw68_from_benchmark_annotations_and_caltech_images(tmp_path, v73):
    points, occs = write_cofw(tmp_path, n=4, v73=v73)
    write_tree(tmp_path, ["helen_test"])
    faces = discover(tmp_path)
    assert list(faces) == ["helen_test", "cofw"] and "cofw" in TEST_SUBSETS
    cofw = faces["cofw"]
    assert [f.image_path.name for f in cofw] == [f"{i}_points.mat" for i in (1, 2, 3, 4)]
    for i, face in enumerate(cofw, start=1):
        expected = cofw_image(i)
        if expected.ndim == 2:
            expected = np.repeat(expected[:, :, None], 3, axis=2)
        np.testing.assert_array_equal(load_image(face), expected)  # orientation survives MATLAB's layout
        np.testing.assert_allclose(face.points, points[i - 1], atol=1e-5)  # 1-based on disk
        np.testing.assert_array_equal(face.occluded, occs[i - 1])
        assert face.photo_id == f"cofw/{i}"


def test_cofw68_problems_are_named(tmp_path):
    write_cofw(tmp_path, n=2)
    (tmp_path / "COFW68_Data" / "COFW_test_color.mat").unlink()
    with pytest.raises(ValueError, match=r"test_annotations: COFW-68 annotations found but no COFW_test_color"):
        discover(tmp_path)
    write_cofw(tmp_path, n=2)
    shutil.copy(tmp_path / "COFW68_Data" / "test_annotations" / "1_points.mat",
                tmp_path / "COFW68_Data" / "test_annotations" / "9_points.mat")
    with pytest.raises(ValueError, match=r"9_points\.mat: face 9 but .*COFW_test_color\.mat holds only 2"):
        discover(tmp_path)
    import scipy.io

    (tmp_path / "COFW68_Data" / "test_annotations" / "9_points.mat").unlink()
    scipy.io.savemat(tmp_path / "COFW68_Data" / "test_annotations" / "2_points.mat", {"Points": np.zeros((5, 2))})
    with pytest.raises(ValueError, match=r"2_points\.mat: missing variable 'Occ'"):
        discover(tmp_path)


def test_default_data_root_never_points_into_an_installed_package(tmp_path, monkeypatch):
    from flzoo import paths

    monkeypatch.delenv("FLZOO_300W", raising=False)
    assert paths.default_data_root() == paths.REPO_ROOT.parent / "shared" / "data" / "300w"  # this checkout
    monkeypatch.setattr(paths, "REPO_ROOT", tmp_path / "site-packages")  # a wheel: no pyproject.toml beside
    assert paths.default_data_root() == Path("300w")
    monkeypatch.setenv("FLZOO_300W", str(tmp_path / "mine"))
    assert paths.default_data_root() == tmp_path / "mine"
