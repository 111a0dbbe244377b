"""`flzoo eval` and `flzoo compare` through click, with a deterministic Landmarker double standing in for
`flzoo.load` (the real model path is exercised by test_eval_real_model when flzoo.inference is present)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import flzoo
from eval_doubles import NMES, OFFSETS, ShapeKeyedLandmarker, make_dataset
from flzoo.cli import main


@pytest.fixture
def data(tmp_path, monkeypatch):
    """A tiny 300-W layout, and `flzoo.load` answering the double for the name "double"."""
    from flzoo.data.datasets import discover

    root = make_dataset(tmp_path / "300w")
    faces = discover(root)
    double = ShapeKeyedLandmarker(faces["helen_test"] + faces["lfpw_test"], OFFSETS, missed=[1])

    def fake_load(name, **kwargs):
        if name != "double":
            raise ValueError(f"unknown model {name!r}")
        return double

    monkeypatch.setattr(flzoo, "load", fake_load)
    return root


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_eval_writes_results_table_and_plots(data, tmp_path):
    out = tmp_path / "eval"
    result = run("eval", "--model", "double", "--data", data, "--out", out)
    assert result.exit_code == 0, result.output
    assert "| Helen | 2 | 0.0625 |" in result.output  # the table is printed too
    res = json.loads((out / "results.json").read_text())
    assert res["model"] == "double" and res["boxes"] == "gt"
    assert list(res["summary"]) == ["helen_test", "lfpw_test", "total"]
    np.testing.assert_allclose([f["nme"] for f in res["faces"]], NMES, atol=1e-6)
    assert {f["image"].rsplit("/", 1)[-1] for f in res["faces"]} == {"1001_1.jpg", "1001_2.jpg", "image_0001.jpg"}
    for name in ("table.md", "ced_68.png", "ced_eyes.png"):
        assert (out / name).stat().st_size > 0


def test_eval_subsets_limit_and_detector(data, tmp_path):
    out = tmp_path / "det"
    result = run("eval", "--model", "double", "--data", data, "--subsets", "helen_test", "--boxes", "detector",
                 "--out", out)
    assert result.exit_code == 0, result.output
    res = json.loads((out / "results.json").read_text())
    assert list(res["summary"]) == ["helen_test", "total"]
    assert res["summary"]["total"]["detection_rate"] == 0.5  # face 1 is missed by the double's detector
    assert "detection rate" in (out / "table.md").read_text()
    assert res["detector"] == "blazeface"  # the library's default, recorded
    result = run("eval", "--model", "double", "--data", data, "--boxes", "detector", "--detector", "dlb",
                 "--out", tmp_path / "bad")
    assert result.exit_code == 2 and "--detector: detector='dlb': not a known detector (did you mean 'dlib'?)" \
        in result.output

    result = run("eval", "--model", "double", "--data", data, "--limit", "1", "--out", tmp_path / "lim")
    res = json.loads((tmp_path / "lim" / "results.json").read_text())
    assert res["summary"]["total"]["n"] == 2  # one face from each of the two subsets


def test_eval_errors_name_the_problem(data, tmp_path):
    result = CliRunner().invoke(main, ["eval", "--model", "double", "--data", str(data), "--subsets", "helen"])
    assert result.exit_code == 2 and "unknown subset 'helen'" in result.output
    result = CliRunner().invoke(main, ["eval", "--model", "double", "--data", str(data), "--subsets", "ibug"])
    assert result.exit_code == 2 and "'ibug' is not in --data" in result.output and "helen_test" in result.output
    result = CliRunner().invoke(main, ["eval", "--model", "double", "--data", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "nowhere: no such folder" in result.output
    (tmp_path / "train_only" / "afw").mkdir(parents=True)
    result = CliRunner().invoke(main, ["eval", "--model", "double", "--data", str(tmp_path / "train_only")])
    assert result.exit_code == 2 and "no test set found" in result.output
    result = CliRunner().invoke(main, ["eval", "--model", "nope", "--data", str(data)])
    assert result.exit_code == 1 and "unknown model 'nope'" in result.output


def test_compare_two_runs(data, tmp_path):
    assert run("eval", "--model", "double", "--data", data, "--out", tmp_path / "a").exit_code == 0
    assert run("eval", "--model", "double", "--data", data, "--boxes", "detector",
               "--out", tmp_path / "b").exit_code == 0
    result = run("compare", tmp_path / "a", tmp_path / "b" / "results.json", "-o", tmp_path / "cmp")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "| set | double | double (detector) |" in text
    # the detector run predicts face 1 from the GT crop as well (a miss), so both score the same: a tie
    assert "| Helen | **0.0625** | **0.0625** |" in text
    assert (tmp_path / "cmp" / "ced_68.png").stat().st_size > 0
    result = run("compare", tmp_path / "a", "--paper", "-o", tmp_path / "cmp_paper")
    assert result.exit_code == 0 and "| Helen, paper | – | 0.0298 |" in result.output  # no variant in "double"
    result = CliRunner().invoke(main, ["compare", str(tmp_path / "nothing_here")])
    assert result.exit_code != 0 and "nothing_here: no results.json" in result.output


def test_rescore_tool_checks_stored_nmes(data, tmp_path, capsys):
    import importlib.util

    from flzoo.paths import REPO_ROOT

    spec = importlib.util.spec_from_file_location("rescore", REPO_ROOT / "tools" / "rescore.py")
    rescore = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rescore)
    assert run("eval", "--model", "double", "--data", data, "--out", tmp_path / "a").exit_code == 0
    results = tmp_path / "a" / "results.json"
    assert rescore.main([str(results), "--threshold", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "AUC@0.1" in out and "| Helen | 2 | 0.0625 |" in out
    res = json.loads(results.read_text())
    res["faces"][0]["nme"] += 0.001  # a results file that does not match its points
    results.write_text(json.dumps(res))
    assert rescore.main([str(results)]) == 1


@pytest.mark.data
@pytest.mark.slow
def test_eval_real_model_on_helen(data_root, tmp_path):
    """The real path: flzoo.load on a saved (untrained) lite model, predict_with_matrices, photo coordinates.
    Untrained points are far off, so this checks the mechanics and the scoring, not accuracy."""
    from eval_doubles import read_pts_independently, rescore
    from flzoo.models import build
    from flzoo.weights import save_model

    save_model(build("direct", backbone="lite"), tmp_path / "direct")
    out = tmp_path / "eval"
    result = CliRunner().invoke(main, ["eval", "--model", str(tmp_path / "direct"), "--data", str(data_root),
                                       "--subsets", "helen_test", "--limit", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    res = json.loads((out / "results.json").read_text())
    assert res["summary"]["helen_test"]["n"] == 3 and len(res["faces"]) == 3
    assert res["variant"] == "direct"  # what flzoo compare --paper reads
    for face in res["faces"]:
        gt = read_pts_independently(face["image"].rsplit(".", 1)[0] + ".pts")
        assert rescore(face["points"], gt) == pytest.approx(face["nme"], abs=1e-6)
