"""Metrics against hand-computed values; evaluate_faces with a deterministic test double; tables, plots,
compare."""

import json
from pathlib import Path

import numpy as np
import pytest

from eval_doubles import (NMES, NMES_EYES, OFFSETS, ShapeKeyedLandmarker, face_points, make_dataset,
                          read_pts_independently, rescore)
from flzoo import evaluate as ev
from flzoo import landmarks, metrics, report
from flzoo.data.datasets import Face


# ---------------------------------------------------------------------------------------- metric functions


def test_nme_hand_computed():
    gt = face_points(0)
    # every point off by a 3-4-5 triangle: 5 px / 40 px
    assert metrics.nme(gt + np.float32([3, 4]), gt) == pytest.approx(0.125)
    # only the 12 eye anchors off by 2 px: 68-point NME 12*2/68/40, eye NME 2/40
    pred = gt.copy()
    pred[36:48, 1] += 2
    assert metrics.nme(pred, gt) == pytest.approx(24 / 68 / 40)
    assert metrics.nme(pred, gt, landmarks.EYE_ANCHORS) == pytest.approx(0.05)
    # batched: one value per face, each normalised by its own outer-eye distance
    gt2 = face_points(1, interocular=80.0)
    batch = metrics.nme(np.stack([gt + np.float32([3, 4]), gt2 + np.float32([0, 8])]), np.stack([gt, gt2]))
    np.testing.assert_allclose(batch, [0.125, 0.1])


def test_nme_is_scale_invariant_and_validates_input():
    gt = face_points(2)
    pred = gt + np.random.default_rng(3).normal(size=gt.shape).astype(np.float32)
    assert metrics.nme(pred * 2.5, gt * 2.5) == pytest.approx(metrics.nme(pred, gt), rel=1e-6)
    with pytest.raises(ValueError, match=r"pred has shape \(67, 2\).*expected"):
        metrics.nme(gt[:67], gt[:67])
    with pytest.raises(ValueError, match="pred has shape"):
        metrics.nme(gt, np.stack([gt, gt]))
    flat = gt.copy()
    flat[45] = flat[36]
    with pytest.raises(ValueError, match="points 36 and 45"):
        metrics.nme(gt, flat)


def test_ced_auc_failure_rate_hand_computed():
    x, y = metrics.ced([0.01, 0.03, 0.05, 0.2], thresholds=[0, 0.01, 0.02, 0.04, 0.08])
    np.testing.assert_allclose(y, [0, 0.25, 0.25, 0.5, 0.75])
    # AUC: faces at 0, 0.04, 0.08, 0.2 cover 1, 1/2, 0, 0 of [0, 0.08] -> 0.375
    assert metrics.auc([0.0, 0.04, 0.08, 0.2]) == pytest.approx(0.375)
    assert metrics.auc([0.02], threshold=0.1) == pytest.approx(0.8)
    # 0.08 itself is not a failure; a missing or infinite NME is
    assert metrics.failure_rate([0.01, 0.08, 0.0801, None]) == pytest.approx(0.5)
    assert metrics.failure_rate([0.01, 0.08, 0.0801, float("nan")]) == pytest.approx(0.5)
    assert metrics.auc([float("inf"), 0.0]) == pytest.approx(0.5)


def test_auc_equals_area_under_the_ced_curve():
    nmes = np.random.default_rng(4).gamma(2.0, 0.02, size=200)
    x, y = metrics.ced(nmes, thresholds=np.linspace(0, 0.08, 80001))
    area = float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x))) / 0.08
    assert metrics.auc(nmes) == pytest.approx(area, abs=1e-4)
    assert 0.0 < metrics.auc(nmes) < 1.0


def test_summarize():
    s = metrics.summarize([0.0, 0.04, 0.08, 0.2], [0.01, 0.01, 0.02, 0.02])
    assert s == pytest.approx({"nme": 0.08, "nme_eyes": 0.015, "auc": 0.375, "fr": 0.25, "n": 4})


def test_match_detection_uses_best_box_overlap():
    gt = face_points(5)  # landmark box inside [30, 110]^2
    lo, hi = gt.min(0), gt.max(0)
    near = {"box": (lo[0] + 5, lo[1] + 10, hi[0], hi[1] + 5), "points": gt, "score": 0.9}
    other = {"box": (lo[0] + 40, lo[1], hi[0] + 40, hi[1]), "points": gt, "score": 0.99}
    far = {"box": (500, 500, 560, 560), "points": gt, "score": 0.99}
    assert ev.match_detection([other, far, near], gt) is near
    assert ev.match_detection([far], gt) is None
    assert ev.match_detection([], gt) is None


@pytest.fixture
def dataset(tmp_path):
    from flzoo.data.datasets import discover

    root = make_dataset(tmp_path / "300w")
    return root, discover(root)


# --------------------------------------------------------------------------------------- evaluate_faces


def test_evaluate_gt_boxes_hand_computed(dataset):
    root, faces = dataset
    assert list(faces) == ["helen_test", "lfpw_test"]
    ordered = faces["helen_test"] + faces["lfpw_test"]
    lm = ShapeKeyedLandmarker(ordered, OFFSETS)
    res = ev.evaluate_faces(lm, faces, boxes="gt", batch_size=2, model_name="double", progress=False)
    assert res["model"] == "double" and res["boxes"] == "gt"
    assert lm.calls == {"predict": 0, "predict_with_matrices": 2}  # two batches of at most 2 faces
    assert [f["subset"] for f in res["faces"]] == ["helen_test", "helen_test", "lfpw_test"]
    # points are stored to 1e-4 px: NMEs within 1e-6 of the hand values, AUC (NME / 0.08) within 1e-4
    np.testing.assert_allclose([f["nme"] for f in res["faces"]], NMES, atol=1e-6)
    np.testing.assert_allclose([f["nme_eyes"] for f in res["faces"]], NMES_EYES, atol=1e-6)
    s = res["summary"]
    assert list(s) == ["helen_test", "lfpw_test", "total"]
    assert s["helen_test"]["nme"] == pytest.approx(0.0625, abs=1e-6)
    assert s["helen_test"]["fr"] == 0.5 and s["helen_test"]["n"] == 2
    assert s["helen_test"]["auc"] == pytest.approx(0.5, abs=1e-4)  # one face perfect, one failed
    assert s["total"]["nme"] == pytest.approx(sum(NMES) / 3, abs=1e-6)
    assert s["total"]["nme_eyes"] == pytest.approx(sum(NMES_EYES) / 3, abs=1e-6)
    assert s["total"]["auc"] == pytest.approx((1 + (0.08 - NMES[2]) / 0.08) / 3, abs=1e-4)
    assert "detection_rate" not in s["total"] and "occlusion" not in res


def test_results_json_rescored_independently(dataset, tmp_path):
    root, faces = dataset
    lm = ShapeKeyedLandmarker(faces["helen_test"] + faces["lfpw_test"], OFFSETS)
    res = ev.evaluate_faces(lm, faces, model_name="double", progress=False)
    out = report.write_outputs(res, tmp_path / "eval")
    data = json.loads((out / "results.json").read_text())
    assert set(data) >= {"model", "boxes", "summary", "faces"}
    for face in data["faces"]:
        gt = read_pts_independently(Path(face["image"]).with_suffix(".pts"))
        assert len(face["points"]) == 68
        assert rescore(face["points"], gt) == pytest.approx(face["nme"], abs=1e-6)
        assert rescore(face["points"], gt, range(36, 48)) == pytest.approx(face["nme_eyes"], abs=1e-6)
    mean = sum(f["nme"] for f in data["faces"]) / len(data["faces"])
    assert data["summary"]["total"]["nme"] == pytest.approx(mean, abs=1e-9)


def test_evaluate_detector_boxes_misses(dataset):
    root, faces = dataset
    ordered = faces["helen_test"] + faces["lfpw_test"]
    # the detector path predicts 1 px off in x; the missed face (index 0) falls back to the GT crop
    lm = ShapeKeyedLandmarker(ordered, OFFSETS, missed=[0], detector_offset=np.float64([1.0, 0.0]))
    res = ev.evaluate_faces(lm, faces, boxes="detector", misses="gt", progress=False)
    assert res["boxes"] == "detector" and res["misses"] == "gt"
    assert [f["detected"] for f in res["faces"]] == [False, True, True]
    np.testing.assert_allclose([f["nme"] for f in res["faces"]], [0.125, 1 / 40, 1 / 40], atol=1e-6)
    assert res["summary"]["helen_test"]["detection_rate"] == 0.5
    assert res["summary"]["lfpw_test"]["detection_rate"] == 1.0
    assert res["summary"]["total"]["detection_rate"] == pytest.approx(2 / 3)
    assert res["summary"]["total"]["n"] == 3

    res = ev.evaluate_faces(lm, faces, boxes="detector", misses="exclude", progress=False)
    assert res["faces"][0]["nme"] is None and res["faces"][0]["points"] is None
    assert res["summary"]["helen_test"]["n"] == 1
    assert res["summary"]["helen_test"]["nme"] == pytest.approx(1 / 40, abs=1e-6)
    assert res["summary"]["total"]["detection_rate"] == pytest.approx(2 / 3)
    assert "excluded" in report.render_table(res)
    # whether test-time flip was on is part of the protocol every table states
    assert "no flip" in report.render_table(res)
    assert "test-time flip" in report.render_table({**res, "flip": True})


def test_occlusion_split_for_cofw_like_faces():
    faces = []
    for i in range(4):
        occ = np.zeros(68, bool)
        if i < 3:
            occ[50 + i] = True  # three faces with an occluded point, one without
        image = np.zeros((140 + i, 150, 3), np.uint8)  # pixels in memory, as COFW's .mat holds them
        faces.append(Face(Path(f"cofw/{i + 1}_points.mat"), face_points(20 + i), "cofw", f"cofw/{i + 1}",
                          occluded=occ, image=image))
    offsets = [np.tile([3.0, 4.0], (68, 1))] * 3 + [np.zeros((68, 2))]
    res = ev.evaluate_faces(ShapeKeyedLandmarker(faces, offsets), {"cofw": faces}, progress=False)
    split = res["occlusion"]["cofw"]
    assert split["occluded"]["n"] == 3 and split["occluded"]["nme"] == pytest.approx(0.125, abs=1e-6)
    assert split["non_occluded"]["n"] == 1 and split["non_occluded"]["nme"] == pytest.approx(0.0, abs=1e-6)
    assert [f["occluded"] for f in res["faces"]] == [True, True, True, False]
    table = report.render_table(res)
    assert "| COFW occluded | 3 | 0.1250 |" in table and "| COFW non-occluded | 1 | 0.0000 |" in table


def test_bad_options_and_model_are_named():
    with pytest.raises(ValueError, match="boxes='box'"):
        ev.evaluate_faces(object(), {}, boxes="box")

    class NoSize:
        input_size = None

    with pytest.raises(ValueError, match="NoSize.input_size is None"):
        ev.evaluate_faces(NoSize(), {}, boxes="gt")


# ----------------------------------------------------------------------------------- files and compare


def _png_size(path):
    from matplotlib.image import imread

    return imread(path).shape


def test_write_outputs_table_and_plots(dataset, tmp_path):
    root, faces = dataset
    lm = ShapeKeyedLandmarker(faces["helen_test"] + faces["lfpw_test"], OFFSETS)
    res = ev.evaluate_faces(lm, faces, model_name="double", progress=False)
    out = report.write_outputs(res, tmp_path / "eval")
    table = (out / "table.md").read_text()
    assert "| Helen | 2 | 0.0625 |" in table and "| LFPW | 1 | 0.0088 |" in table
    assert "| **Total** | 3 |" in table and "50.0%" in table  # Helen FR
    for name in ("ced_68.png", "ced_eyes.png"):
        h, w = _png_size(out / name)[:2]
        assert h >= 500 and w >= 700


def _fake_results(model, nme_by_subset, boxes="gt"):
    faces = [{"image": f"{s}.jpg", "subset": s, "points": None, "nme": v, "nme_eyes": v / 2}
             for s, v in nme_by_subset.items()]
    summary = metrics.summarize_records(faces)
    return {"model": model, "boxes": boxes, "summary": summary, "faces": faces}


def test_compare_marks_best_per_row(tmp_path):
    runs = {
        "runs/pwc/best": {"helen_test": 0.05, "ibug": 0.09},
        "hybrid_disc": {"helen_test": 0.04, "ibug": 0.10},
    }
    paths = []
    for i, (model, nmes) in enumerate(runs.items()):
        folder = tmp_path / f"run{i}"
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps(_fake_results(model, nmes)))
        paths.append(folder)
    text = report.write_comparison([(str(p), report.load_results(p)) for p in paths], tmp_path / "cmp")
    nme_table = text.split("## NME, 68 points")[1].split("##")[0]
    assert "| set | pwc/best | hybrid_disc |" in nme_table
    assert "| Helen | 0.0500 | **0.0400** |" in nme_table
    assert "| IBUG | **0.0900** | 0.1000 |" in nme_table
    assert nme_table.index("Helen") < nme_table.index("IBUG") < nme_table.index("Total")
    assert "| Total | 0.0700 | 0.0700 |" not in nme_table  # a tie: both best
    assert "| Total | **0.0700** | **0.0700** |" in nme_table
    auc_table = text.split("## AUC@0.08")[1].split("##")[0]
    assert "| Helen | 0.3750 | **0.5000** |" in auc_table  # higher AUC is better
    fr_table = text.split("## Failure rate")[1]
    assert "| IBUG | **100.0%** | **100.0%** |" in fr_table and "| Helen | **0.0%** | **0.0%** |" in fr_table
    assert "not comparable" not in text
    assert (tmp_path / "cmp" / "comparison.md").read_text() == text
    assert _png_size(tmp_path / "cmp" / "ced_68.png")[0] >= 500

    # a run without IBUG: an empty cell, and a warning that the Total rows mix different test sets
    (tmp_path / "run2.json").write_text(json.dumps(_fake_results("dlib", {"helen_test": 0.03})))
    paths.append(tmp_path / "run2.json")
    text = report.write_comparison([(str(p), report.load_results(p)) for p in paths], tmp_path / "cmp2")
    assert "| IBUG | **0.0900** | 0.1000 | – |" in text
    assert "| Helen | 0.0500 | 0.0400 | **0.0300** |" in text
    assert "Total rows are not comparable" in text


def test_compare_with_the_papers_and_dlibs_figures(tmp_path):
    runs = {"preset-pwc.mnv2": {"helen_test": 0.05, "ibug": 0.09}, "runs/hybrid_seed1/best": {"helen_test": 0.02},
            "my_model": {"helen_test": 0.04}}
    loaded = [(model, _fake_results(model, nmes)) for model, nmes in runs.items()]
    assert [report.results_variant(r) for _, r in loaded] == ["pwc", "hybrid", None]
    assert report.results_variant({**loaded[2][1], "variant": "distribution"}) == "distribution"  # flzoo eval's field
    text = report.write_comparison(loaded, tmp_path / "cmp", paper=True)
    nme_table = text.split("## NME, 68 points")[1].split("##")[0]
    assert "| set | pwc.mnv2 | hybrid_seed1/best | my_model | dlib ERT (its own detector) |" in nme_table
    # dlib's measured figure is shown, not ranked (another protocol); the paper's row: its figure for each
    # column's variant
    assert "| Helen | 0.0500 | **0.0200** | 0.0400 | 0.0274 |" in nme_table
    assert "| Helen, paper | 0.0334 | 0.0315 | – | 0.0298 |" in nme_table
    # one run with a figure: nothing to rank
    assert "| IBUG | 0.0900 | – | – | – |" in nme_table and "| IBUG, paper | 0.0656 | 0.0637 | – | 0.0594 |" in nme_table
    assert "Total, paper" not in nme_table  # the paper's Total mixes test sets flzoo's does not cover
    fr_table = text.split("## Failure rate")[1]
    assert "| Helen | **0.0%** | **0.0%** | **0.0%** | 1.8% |" in fr_table and ", paper" not in fr_table
    assert "dlib ERT" not in report.write_comparison(loaded, tmp_path / "plain")


def test_find_results_and_load_errors(tmp_path):
    run = tmp_path / "run"
    (run / "eval-gt").mkdir(parents=True)
    (run / "eval-gt" / "results.json").write_text(json.dumps(_fake_results("m", {"helen_test": 0.05})))
    assert report.find_results(run) == [run / "eval-gt" / "results.json"]
    with pytest.raises(ValueError, match=r"empty: no results.json"):
        (tmp_path / "empty").mkdir()
        report.find_results(tmp_path / "empty")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": "m"}))
    with pytest.raises(ValueError, match=r"bad.json: field 'boxes' is missing"):
        report.load_results(bad)


def test_the_reference_figures_are_docs_paper_md_s():
    """flzoo.reference is the code's copy of docs/paper.md's Table 2 and dlib measurement: they must agree."""
    import re

    from flzoo.paths import REPO_ROOT
    from flzoo.reference import DLIB_MEASURED, PAPER_NME

    text = (REPO_ROOT / "docs" / "paper.md").read_text()
    labels = {"Helen test": "helen_test", "LFPW test": "lfpw_test", "300-W indoor": "300w_indoor",
              "300-W outdoor": "300w_outdoor", "IBUG": "ibug"}
    header = next(line for line in text.splitlines() if line.startswith("| set | Dlib |"))
    columns = ["dlib", "direct", "cascaded", "distribution", "heatmap_reg", "pwc", "pwc_disc", "hybrid", "hybrid_disc"]
    assert len(header.split("|")[2:-1]) == len(columns)
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] in labels:
            rows[labels[cells[0]]] = dict(zip(columns, map(float, cells[1:])))
    assert rows == PAPER_NME
    measured = re.search(r"Helen test NME ([\d.]+) \(AUC@0.08 ([\d.]+), FR@0.08 ([\d.]+)%\)", text)
    assert DLIB_MEASURED["helen_test"] == pytest.approx({"nme": float(measured[1]), "auc": float(measured[2]),
                                                        "fr": float(measured[3]) / 100}, abs=1e-9)
