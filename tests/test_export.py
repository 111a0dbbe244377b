"""`flzoo export`: the exported ONNX graph gives the same points as Keras."""

import numpy as np
import pytest

BUILD = dict(variant="hybrid", backbone="lite", input_size=64, width=0.25)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    import keras

    from flzoo.models import build
    from flzoo.weights import save_model

    keras.utils.set_random_seed(0)  # fixed weights: no run-to-run luck in near-tied heatmap peaks
    return save_model(build(**BUILD), tmp_path_factory.mktemp("export") / "tiny")


def test_onnx_export_matches_keras_on_the_astronaut(model_dir, tmp_path):
    import onnxruntime as ort
    from click.testing import CliRunner
    from skimage import data

    import flzoo
    from flzoo.cli import main
    from flzoo.data.crop import crop_matrix, crop_square, warp

    out = tmp_path / "tiny.onnx"
    result = CliRunner().invoke(main, ["export", str(model_dir), "--format", "onnx", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "input 64x64x3" in result.output and out.is_file()

    landmarker = flzoo.load(model_dir)
    astronaut = data.astronaut()
    faces = landmarker.predict(astronaut)
    assert len(faces) == 1
    # crops of the astronaut's face at three scales, the way Landmarker makes them
    matrices = [crop_matrix(*crop_square(faces[0]["points"], scale=s), 64) for s in (1.1, 1.3, 1.6)]
    crops = np.stack([warp(astronaut, m, 64) for m in matrices]).astype(np.float32)
    keras_points = landmarker.model.predict_points(crops)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (onnx_points,) = session.run(None, {session.get_inputs()[0].name: crops})
    assert onnx_points.shape == (3, 68, 2)
    np.testing.assert_allclose(onnx_points, keras_points, atol=0.05)
    # batch 1 works too (dynamic batch dimension)
    (one,) = session.run(None, {session.get_inputs()[0].name: crops[:1]})
    np.testing.assert_allclose(one, keras_points[:1], atol=0.05)


def test_export_errors_name_the_problem(model_dir, tmp_path):
    from click.testing import CliRunner

    from flzoo.cli import main

    result = CliRunner().invoke(main, ["export", str(model_dir), "--format", "onnx", "-o", str(tmp_path / "x.bin")])
    assert result.exit_code == 2 and "needs a path ending in .onnx" in result.output
    result = CliRunner().invoke(main, ["export", "no-such-model", "-o", str(tmp_path / "x.onnx")])
    assert result.exit_code == 2 and "'no-such-model': not a model name" in result.output
