"""What a user can get wrong, run through the CLI as a user would: each case exits non-zero with one message
naming the culprit (file, field or value) and never a traceback, and nothing the user gave is lost."""

import json

import pytest
from click.testing import CliRunner

from flzoo.cli import main
from tests.data_fakes import write_face, write_tree

TINY_TRAIN = ["--set", "data.max_faces=4", "--set", "data.max_val_faces=2", "--set", "train.batch_size=2",
              "--set", "train.max_steps=2", "--set", "train.val_every=2", "--set", "output.overlays=0",
              "--set", "model.input_size=32", "--set", "model.options.width=0.25", "--no-progress"]


def run(*argv):
    result = CliRunner().invoke(main, [str(a) for a in argv])
    text = result.output  # stdout and stderr together
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not crashed and "Traceback" not in text, f"{argv}: {result.exception!r}\n{text}"
    return result.exit_code, text


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from flzoo.models import build
    from flzoo.weights import save_model

    return save_model(build("pwc", "lite", 32, width=0.25), tmp_path_factory.mktemp("bad") / "tiny")


def _break_data(root):
    """Three bad files: a .pts with 67 points, one with a word for a number, an image that is not one."""
    pts = root / "helen/testset/296814969_3.pts"
    lines = pts.read_text().splitlines()
    del lines[5]
    lines[1] = "n_points: 67"
    pts.write_text("\n".join(lines) + "\n")
    other = root / "helen/testset/2968560214_1.pts"
    other.write_text(other.read_text().replace(other.read_text().splitlines()[4].split()[0], "abc", 1))
    (root / "afw/134212_1.jpg").write_bytes(b"not a jpeg at all")


@pytest.fixture
def bad_data(tmp_path):
    root = tmp_path / "data"
    write_tree(root, ["afw", "helen_train", "lfpw_train", "helen_test"])
    write_face(root / "helen/testset", "300000001_1", seed=7)  # a third, good test face
    _break_data(root)
    return root


def test_eval_lists_every_bad_file_before_loading_the_model(bad_data, tiny_model, tmp_path):
    code, text = run("eval", "--model", tiny_model, "--data", bad_data, "--subsets", "helen_test",
                     "--out", tmp_path / "ev")
    assert code != 0
    assert "2 bad file(s)" in text and "296814969_3.pts" in text and "2968560214_1.pts" in text
    assert "--skip-bad" in text and not (tmp_path / "ev").exists()


def test_eval_skip_bad_scores_the_rest_and_records_what_it_left_out(bad_data, tiny_model, tmp_path):
    code, text = run("eval", "--model", tiny_model, "--data", bad_data, "--subsets", "helen_test",
                     "--out", tmp_path / "ev", "--skip-bad")
    assert code == 0, text
    results = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert len(results["skipped"]) == 2 and len(results["faces"]) == 1
    assert any("296814969_3.pts" in s for s in results["skipped"])


def test_train_stops_before_work_on_a_bad_image_and_a_fixed_retry_starts(bad_data, tmp_path):
    from flzoo.paths import REPO_ROOT

    recipe = REPO_ROOT / "recipes/lite/pwc.yaml"
    out = tmp_path / "run"
    code, text = run("train", recipe, "--data", bad_data, "--out", out, *TINY_TRAIN)
    assert code != 0 and "afw/134212_1.jpg" in text and "unreadable image" in text
    assert not out.exists()
    code, text = run("train", recipe, "--data", bad_data, "--out", out, "--skip-bad", *TINY_TRAIN)
    assert code == 0, text
    assert "left out afw/134212_1.jpg" in text
    assert json.loads((out / "metrics.json").read_text())["skipped_faces"] == 1


def test_a_start_that_failed_before_its_first_checkpoint_does_not_block_the_next(tmp_path):
    from flzoo.train.run_folder import check_out
    from flzoo.train.recipe import load
    from flzoo.paths import REPO_ROOT

    out = tmp_path / "run"
    out.mkdir()
    (out / "recipe.yaml").write_text("name: other\n")  # what a crashed start leaves
    assert check_out(out, load(REPO_ROOT / "recipes/lite/pwc.yaml"), resume=False) is None


# ---------------------------------------------------------------- the CLI over a table of bad inputs


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    import cv2
    from skimage import data

    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    cv2.imwrite(str(path), data.astronaut()[:, :, ::-1])
    return path


@pytest.fixture(scope="module")
def broken_models(tiny_model, tmp_path_factory):
    """Copies of the tiny model: one whose config.json names no variant flzoo has, one holding a NaN."""
    import shutil

    import numpy as np
    from safetensors.numpy import load_file, save_file

    root = tmp_path_factory.mktemp("broken")
    bad_config = shutil.copytree(tiny_model, root / "bad_config")
    config = json.loads((bad_config / "config.json").read_text())
    config["build"]["variant"] = "pwcx"
    (bad_config / "config.json").write_text(json.dumps(config))
    nan = shutil.copytree(tiny_model, root / "nan")
    tensors = load_file(str(nan / "model.safetensors"))
    key = sorted(k for k, v in tensors.items() if v.dtype == np.float32 and v.size > 1)[0]
    tensors[key][0] = np.nan
    save_file(tensors, str(nan / "model.safetensors"), metadata={"format": "flzoo", "flzoo_version": "0.1.0"})
    return {"bad_config": bad_config, "nan": nan, "nan_key": key}


def _cases(photo, tiny_model, broken, tmp):
    existing_file = tmp / "existing.txt"
    existing_file.write_text("keep me")
    dup = tmp / "dup.yaml"
    dup.write_text("model:\n  variant: pwc\n  variant: hybrid\n")
    return [
        (["predict", photo, "-o", photo], ["astronaut.png", "never writes over an input"]),
        (["predict", photo, "--json", photo], ["--json", "input photos"]),
        (["predict", tmp], [str(tmp), "is a directory"]),
        (["predict", "https://example.com/face.jpg"], ["https://example.com/face.jpg", "a URL"]),
        (["predict", photo, "--json", tmp], [str(tmp), "is a directory"]),
        (["predict", photo, "-o", existing_file / "x.png"], ["existing.txt", "is a file, not a folder"]),
        (["predict", photo, "-o", tmp / "x.gif"], ["x.gif", ".png or .jpg"]),
        (["predict", photo, "--model", "hybird"], ["hybird", "did you mean 'hybrid'"]),
        (["list", "hybird"], ["hybird", "did you mean 'hybrid'"]),
        (["predict", photo, "--model", broken["bad_config"]], ["config.json", "pwcx"]),
        (["predict", photo, "--model", broken["nan"]], ["model.safetensors", broken["nan_key"], "NaN"]),
        (["export", tiny_model, "--format", "tf_saved_model", "-o", existing_file], ["existing.txt", "is a file"]),
        (["train", dup], ["dup.yaml", "'variant' is given twice", "lines 2 and 3"]),
    ]


@pytest.mark.slow
def test_the_cli_over_a_table_of_bad_inputs(photo, tiny_model, broken_models, tmp_path):
    for argv, words in _cases(photo, tiny_model, broken_models, tmp_path):
        code, text = run(*argv)
        assert code != 0, (argv, text)
        for word in words:
            assert str(word) in text, (argv, word, text)
    assert (tmp_path / "existing.txt").read_text() == "keep me"
    assert photo.stat().st_size > 0


def test_a_missing_backend_package_is_one_line(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "jax" else real(name, *a))
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    code, text = run("list")
    assert code != 0 and text.strip() == "Error: KERAS_BACKEND=jax: the jax package is not installed; pip install " \
                                         "'flzoo[jax]'"


def test_same_named_photos_get_their_own_overlays_and_json_is_strict(photo, tmp_path):
    import shutil

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one, two = shutil.copy(photo, tmp_path / "a"), shutil.copy(photo, tmp_path / "b")
    out = tmp_path / "out"
    code, text = run("predict", one, two, "--out-dir", out, "--json", tmp_path / "p.json")
    assert code == 0, text
    assert sorted(p.name for p in out.iterdir()) == ["astronaut_landmarks-2.png", "astronaut_landmarks.png"]
    records = json.loads((tmp_path / "p.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert [r["overlay"] for r in records["images"]] == [str(out / "astronaut_landmarks.png"),
                                                          str(out / "astronaut_landmarks-2.png")]


def test_a_json_that_cannot_be_written_still_gives_the_points(photo, tmp_path):
    """/dev/full fails every write with 'No space left on device', as a full disk does."""
    code, text = run("predict", photo, "-o", tmp_path / "o.png", "--json", "/dev/full")
    assert code != 0 and "/dev/full: cannot write the JSON (No space left on device)" in text
    assert '"points": [' in text  # the points went to stdout instead of being lost


def test_api_bad_arguments_name_the_value(tiny_model):
    import numpy as np

    import flzoo
    from skimage import data

    image = data.astronaut()  # 512 x 512
    lm = flzoo.load(tiny_model, detector=None, refine=False)
    for boxes, words in (([(5000, 5000, 5200, 5200)], ["(5000, 5000, 5200, 5200)", "does not overlap"]),
                         ([(10, 10, 10.01, 10.01)], ["below the 4 px"]),
                         ([(0, 0, 1e9, 1e9)], ["1e+09", "more than 4 x"])):
        with pytest.raises(ValueError) as info:
            lm.predict(image, boxes=boxes)
        for word in words:
            assert word in str(info.value)
    assert len(lm.predict(image, boxes=[(-50, -50, 100, 100)])) == 1  # partly outside: the crop pads
    for detector, word in ((lambda im: 5, "returned 5"), (lambda im: {"box": 1}, "expected a list of boxes"),
                           (lambda im: [((10, 10, 100, 100), "high")], "score 'high' is not a number")):
        with pytest.raises(ValueError, match=word):
            flzoo.load(tiny_model, detector=detector).predict(image)
    for kwargs, word in (({"refine": "yes"}, "refine='yes'"), ({"batch_size": 0}, "batch_size=0")):
        with pytest.raises(ValueError, match=word):
            flzoo.load(tiny_model, **kwargs)
    for bad, word in ((image.astype(np.uint16) * 256, "16-bit"), (None, "got NoneType"), (b"\xff\xd8", "got bytes")):
        with pytest.raises(ValueError, match=word):
            lm.predict(bad, boxes=[(100, 100, 200, 200)])


def test_an_evaluation_that_cannot_be_written_says_so(tiny_model, tmp_path):
    from tests.data_fakes import write_tree

    root = tmp_path / "data"
    write_tree(root, ["helen_test"])
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, text = run("eval", "--model", tiny_model, "--data", root, "--subsets", "helen_test", "--out", blocker / "ev")
    assert code != 0 and "cannot write the evaluation" in text and str(blocker) in text


def _cli(args, **env):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "flzoo.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600, env={k: v for k, v in {**os.environ, **env}.items() if v is not None})


# TensorFlow's C++ start-up lines; which of them it prints depends on the CPU (no oneDNN line on some)
TF_START_UP_MARKERS = ("oneDNN", "I0000", "absl")


def test_a_clean_terminal_and_verbose_brings_the_logs_back(photo, tmp_path):
    quiet = _cli(["predict", photo, "-o", tmp_path / "o.png", "--runtime", "keras"], TF_CPP_MIN_LOG_LEVEL=None)
    assert quiet.returncode == 0, quiet.stderr
    assert not any(marker in quiet.stderr for marker in TF_START_UP_MARKERS), quiet.stderr
    loud = _cli(["--verbose", "predict", photo, "-o", tmp_path / "o.png", "--runtime", "keras"],
                TF_CPP_MIN_LOG_LEVEL=None)
    assert loud.returncode == 0 and any(marker in loud.stderr for marker in TF_START_UP_MARKERS), loud.stderr


def test_onnx_export_on_torch_names_the_backend_to_use(tiny_model, tmp_path):
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    proc = _cli(["export", tiny_model, "--format", "onnx", "-o", tmp_path / "m.onnx"], KERAS_BACKEND="torch")
    assert proc.returncode != 0 and "KERAS_BACKEND=tensorflow" in proc.stderr and "Traceback" not in proc.stderr


def test_training_progress_in_a_pipe_is_a_line_per_100_steps(tmp_path):
    import subprocess
    import sys

    from flzoo.paths import REPO_ROOT

    root = tmp_path / "data"
    write_tree(root, ["afw", "helen_train", "lfpw_train"])
    args = [a for a in TINY_TRAIN if a != "--no-progress"]
    proc = subprocess.run([sys.executable, "-m", "flzoo.train.cli", str(REPO_ROOT / "recipes/lite/pwc.yaml"), "--data",
                           str(root), "--out", str(tmp_path / "run"), *args], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "step 2/2 loss" in proc.stderr and "\r" not in proc.stderr
