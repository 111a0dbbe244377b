"""`flzoo export`: the exported graphs (ONNX, TF SavedModel, LiteRT, OpenVINO) give the same points as Keras."""

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


@pytest.fixture(scope="module")
def landmarker(model_dir):
    import flzoo

    # dlib: the astronaut crops below start from its box, and the seed above was checked to give those crops no
    # near-tied peaks (this file tests the exported graphs, not detection)
    return flzoo.load(model_dir, detector="dlib")


@pytest.fixture(scope="module")
def astronaut_crops(landmarker):
    """``(crops, keras_points)``: the astronaut's face at three scales, cropped the way Landmarker does."""
    from skimage import data

    from flzoo.data.crop import crop_matrix, crop_square, warp

    astronaut = data.astronaut()
    faces = landmarker.predict(astronaut)
    assert len(faces) == 1
    matrices = [crop_matrix(*crop_square(faces[0]["points"], scale=s), 64) for s in (1.1, 1.3, 1.6)]
    crops = np.stack([warp(astronaut, m, 64) for m in matrices]).astype(np.float32)
    return crops, landmarker.model.predict_points(crops)


def _export(landmarker, path, fmt):
    from flzoo.export import export_model

    return export_model(landmarker.model, path, fmt)


def test_onnx_export_matches_keras_on_the_astronaut(model_dir, astronaut_crops, tmp_path):
    import onnxruntime as ort
    from click.testing import CliRunner

    from flzoo.cli import main

    out = tmp_path / "tiny.onnx"
    result = CliRunner().invoke(main, ["export", str(model_dir), "--format", "onnx", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "input 64x64x3" in result.output and out.is_file()

    crops, keras_points = astronaut_crops
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (onnx_points,) = session.run(None, {session.get_inputs()[0].name: crops})
    assert onnx_points.shape == (3, 68, 2)
    np.testing.assert_allclose(onnx_points, keras_points, atol=0.05)
    # batch 1 works too (dynamic batch dimension)
    (one,) = session.run(None, {session.get_inputs()[0].name: crops[:1]})
    np.testing.assert_allclose(one, keras_points[:1], atol=0.05)


def test_tf_saved_model_export_matches_keras(landmarker, astronaut_crops, tmp_path):
    tf = pytest.importorskip("tensorflow", reason="tf_saved_model export needs tensorflow")

    crops, keras_points = astronaut_crops
    folder = _export(landmarker, tmp_path / "tiny_saved_model", "tf_saved_model")
    loaded = tf.saved_model.load(str(folder))
    points = loaded.serve(tf.constant(crops)).numpy()
    assert points.shape == (3, 68, 2)
    np.testing.assert_allclose(points, keras_points, atol=0.05)


def _litert_interpreter(path):
    """A LiteRT interpreter: ``ai_edge_litert`` when installed, else TensorFlow's (deprecated) ``tf.lite``."""
    import warnings

    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        tf = pytest.importorskip("tensorflow", reason="no LiteRT runtime: neither ai_edge_litert nor tensorflow")
        Interpreter = getattr(getattr(tf, "lite", None), "Interpreter", None)
        if Interpreter is None:
            pytest.skip("no LiteRT runtime: ai_edge_litert is not installed and this tensorflow has no tf.lite")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        return Interpreter(model_path=str(path))


def test_litert_export_matches_keras(landmarker, astronaut_crops, tmp_path):
    pytest.importorskip("tensorflow", reason="litert export needs tensorflow")
    crops, keras_points = astronaut_crops
    path = _export(landmarker, tmp_path / "tiny.tflite", "litert")
    interpreter = _litert_interpreter(path)
    inp = interpreter.get_input_details()[0]
    assert tuple(inp["shape_signature"]) == (-1, 64, 64, 3)  # dynamic batch
    interpreter.resize_tensor_input(inp["index"], crops.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], crops)
    interpreter.invoke()
    points = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert points.shape == (3, 68, 2)
    np.testing.assert_allclose(points, keras_points, atol=0.05)


def test_openvino_export_matches_keras(landmarker, astronaut_crops, tmp_path):
    ov = pytest.importorskip("openvino", reason="openvino is not installed (pip install openvino)")
    crops, keras_points = astronaut_crops
    path = _export(landmarker, tmp_path / "tiny.xml", "openvino")
    compiled = ov.Core().compile_model(str(path), "CPU")
    points = np.asarray(compiled(crops)[compiled.output(0)])
    assert points.shape == (3, 68, 2)
    np.testing.assert_allclose(points, keras_points, atol=0.05)


def test_export_errors_name_the_problem(model_dir, tmp_path):
    from click.testing import CliRunner

    from flzoo.cli import main

    result = CliRunner().invoke(main, ["export", str(model_dir), "--format", "onnx", "-o", str(tmp_path / "x.bin")])
    assert result.exit_code == 2 and "needs a path ending in .onnx" in result.output
    result = CliRunner().invoke(main, ["export", "no-such-model", "-o", str(tmp_path / "x.onnx")])
    assert result.exit_code == 2 and "'no-such-model' is not in the flzoo registry" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["mobilenet_v2", "efficientnet_lite0"])
def test_imagenet_backbones_export_to_onnx_and_litert(backbone, tmp_path):
    """The ImageNet networks' layer names (PyTorch module names) are valid in exported graphs, and the exports
    give Keras's points."""
    import keras
    import onnxruntime as ort
    import tensorflow as tf

    from flzoo.export import export_model
    from flzoo.models import build

    keras.utils.set_random_seed(0)
    model = build("hybrid", backbone, 64, freeze=8)
    crops = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    expected = model.predict_points(crops)
    session = ort.InferenceSession(str(export_model(model, tmp_path / "m.onnx", "onnx")),
                                   providers=["CPUExecutionProvider"])
    onnx_points = session.run(None, {session.get_inputs()[0].name: crops})[0]
    np.testing.assert_allclose(onnx_points, expected, atol=0.05)
    it = tf.lite.Interpreter(model_path=str(export_model(model, tmp_path / "m.tflite", "litert")))
    it.resize_tensor_input(it.get_input_details()[0]["index"], crops.shape)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], crops)
    it.invoke()
    np.testing.assert_allclose(it.get_tensor(it.get_output_details()[0]["index"]), expected, atol=0.05)
