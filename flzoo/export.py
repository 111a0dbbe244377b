"""Exported graphs: ``export_model`` (``flzoo export``) and the exported runtimes behind ``flzoo.load``.

An exported graph is the model's ``inference_model()``: ``(B, S, S, 3)`` float32 RGB 0..255 crops -> ``(B, 68, 2)``
points in crop pixels, decoding included. ``runtime_model(model, folder, runtime)`` returns an object with the
``LandmarkModel`` interface that ``Landmarker`` uses (``predict_points``, ``input_size``, ...) running in LiteRT or
ONNX Runtime. The file is exported once into ``cache_dir()/exports/<key>/`` where the key hashes the weights
file, the build config and the flzoo and Keras versions; it is used only when its ``verified.json`` says its
points matched Keras's within ``TOLERANCE_PX`` on probe crops when it was made.
"""

import hashlib
import json
import os
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np

FORMATS = ("onnx", "litert", "tf_saved_model", "openvino")
SUFFIX = {"onnx": ".onnx", "litert": ".tflite", "openvino": ".xml"}
RUNTIMES = ("auto", "keras", "litert", "onnx")
AUTO_ORDER = ("litert", "onnx")  # fastest first (docs/models.md "Speed of the backbones"), then Keras
TOLERANCE_PX = 0.05  # an exported graph must give Keras's points within this (crop pixels)


def export_model(model, path, fmt, graph=None):
    """Export ``model.inference_model()`` (image RGB 0..255 -> points in crop pixels) with ``keras.Model.export``
    (or ``graph``, another functional model of the same input: the runtimes use ``flzoo.confidence.scored_model``)."""
    import keras

    if fmt not in FORMATS:
        raise ValueError(f"format={fmt!r}: expected one of {', '.join(FORMATS)}")
    path = Path(path)
    suffix = SUFFIX.get(fmt)
    if suffix and path.suffix != suffix:
        raise ValueError(f"{path}: a {fmt} export needs a path ending in {suffix}")
    if fmt == "tf_saved_model" and path.exists() and not path.is_dir():
        raise ValueError(f"{path}: is a file; a tf_saved_model export is a folder: give a new folder path")
    if fmt == "onnx" and keras.backend.backend() == "torch":  # torch.onnx has no take_along_dim (the decoding)
        raise ValueError("ONNX export needs the tensorflow or jax backend (torch's exporter has no "
                         "take_along_dim): run it with KERAS_BACKEND=tensorflow")
    if path.parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    graph = graph or model.inference_model()
    size = model.input_size
    graph(np.zeros((1, size, size, 3), np.float32))  # Keras' ONNX exporter refuses a never-called model
    with warnings.catch_warnings():  # tf2onnx's FutureWarning about np.object is not the user's concern
        warnings.simplefilter("ignore", FutureWarning)
        graph.export(str(path), format=fmt, verbose=False)
    return path


# ---- runtimes behind flzoo.load -------------------------------------------------------------------------


def available(runtime):
    """Whether the package a runtime needs is installed (LiteRT: TensorFlow's interpreter; ONNX: onnxruntime,
    and tf2onnx to export)."""
    import importlib.util

    if runtime == "keras":
        return True
    if runtime == "litert":
        import keras

        return keras.backend.backend() == "tensorflow" and importlib.util.find_spec("tensorflow") is not None
    if runtime == "onnx":
        return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))
    raise ValueError(f"runtime={runtime!r}: expected one of {', '.join(RUNTIMES)}")


def cache_key(folder):
    """sha256 of the weights file, the build config and the flzoo / Keras versions."""
    import keras

    from flzoo.version import __version__
    from flzoo.weights import CONFIG_FILE, WEIGHTS_FILE

    digest = hashlib.sha256()
    with open(Path(folder) / WEIGHTS_FILE, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    config = json.loads((Path(folder) / CONFIG_FILE).read_text())
    digest.update(json.dumps([config.get("build"), __version__, keras.__version__], sort_keys=True).encode())
    return digest.hexdigest()


def _probe(size):
    """Fixed probe crops: smooth random images, the same every time."""
    rng = np.random.default_rng(68)
    small = rng.uniform(0, 255, (3, 8, 8, 3)).astype(np.float32)
    import cv2

    return np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_CUBIC) for im in small]).clip(0, 255)


class ExportedModel:
    """A ``LandmarkModel`` stand-in whose ``predict_points`` runs an exported graph; every other attribute
    (``input_size``, ``flzoo_config``, ``variant``, ...) is the Keras model's."""

    def __init__(self, model, path, runtime, scored=False, threads=None):
        self._model, self.path, self.runtime, self.scored = model, Path(path), runtime, scored
        self._run = RUNNERS[runtime](self.path, threads)

    def __getattr__(self, name):
        return getattr(self._model, name)

    def predict_points(self, x, batch_size=32):
        return self._predict(x, batch_size)[..., :2]

    def predict_scored(self, x, batch_size=32):
        """``(points (B, 68, 2), point confidence (B, 68))`` from a scored graph (``flzoo.confidence``)."""
        if not self.scored:
            raise ValueError(f"{self.path}: exported without confidence (variant {self._model.variant!r})")
        out = self._predict(x, batch_size)
        return out[..., :2], out[..., 2]

    def _predict(self, x, batch_size):
        x = np.asarray(x, dtype=np.float32)
        size = self._model.input_size
        if x.ndim != 4 or x.shape[1:] != (size, size, 3):
            raise ValueError(f"predict_points: images of shape {x.shape}, expected (B, {size}, {size}, 3) RGB 0..255")
        out = [self._run(np.ascontiguousarray(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 68, 3 if self.scored else 2),
                                                                              np.float32)


def _threads():
    return max(1, min(4, os.cpu_count() or 1))


def litert_interpreter(path, threads=None):
    """A ``tf.lite.Interpreter`` for a ``.tflite`` file, tensors allocated, its start-up notices hidden."""
    import tensorflow as tf

    from flzoo.quiet import stderr_to_devnull

    with stderr_to_devnull(), warnings.catch_warnings():  # the XNNPACK delegate notice, the deprecation note
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=threads or _threads())
        interpreter.allocate_tensors()
    return interpreter


def litert_runner(path, threads=None):
    from flzoo.quiet import stderr_to_devnull

    interpreter = litert_interpreter(path, threads)
    inp = interpreter.get_input_details()[0]["index"]
    out = interpreter.get_output_details()[0]["index"]
    shape = [None]

    def run(x):
        if shape[0] != x.shape:
            with stderr_to_devnull():
                interpreter.resize_tensor_input(inp, x.shape)
                interpreter.allocate_tensors()
            shape[0] = x.shape
        interpreter.set_tensor(inp, x)
        interpreter.invoke()
        return interpreter.get_tensor(out).copy()

    return run


def onnx_runner(path, threads=None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or _threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


# runtime -> runner(path, threads) returning a function crops -> points (ExportedModel looks it up when called)
RUNNERS = {"litert": litert_runner, "onnx": onnx_runner}


def runtime_model(model, folder, runtime="auto", log=None, threads=None):
    """``model`` itself (Keras) or an ``ExportedModel`` for ``runtime``; ``"auto"`` takes the first of
    ``AUTO_ORDER`` that is installed and verified for this model, else Keras. Exports and verifies on first use
    (saying so through ``log``, default stderr), then reuses the cached file. ``threads``: CPU threads of the
    exported runtime (default ``min(4, CPUs)``; on a machine busy with other jobs 1 can be faster)."""
    from flzoo.models.pretrained import cache_dir

    if runtime not in RUNTIMES:
        raise ValueError(f"runtime={runtime!r}: expected one of {', '.join(RUNTIMES)}")
    if runtime == "keras":
        return model
    log = log or (lambda m: print(m, file=sys.stderr))
    candidates = [r for r in AUTO_ORDER if available(r)] if runtime == "auto" else [runtime]
    if runtime != "auto" and not available(runtime):
        need = "tensorflow (the Keras backend must be tensorflow)" if runtime == "litert" else \
            "onnxruntime and onnx (pip install 'flzoo[export]')"
        raise ValueError(f"runtime={runtime!r} needs {need}")
    from flzoo.confidence import has_maps

    key = cache_key(folder)
    scored = has_maps(model)  # map variants export points + point confidence from one pass (flzoo.confidence)
    for name in candidates:
        place = cache_dir() / "exports" / f"{key[:32]}-{name}{'-scored' if scored else ''}"
        verified = _verified(place, key)
        if verified is None:
            log(f"flzoo: exporting {Path(folder).name} to {name} for fast inference (once; cached in {place})")
            try:
                verified = _export_and_verify(model, place, key, name, scored)
            except Exception as err:  # noqa: BLE001 - any exporter failure means: not this runtime
                log(f"flzoo: {name} export failed ({type(err).__name__}: {str(err).splitlines()[0][:200]})")
                if runtime != "auto":
                    raise ValueError(f"runtime={runtime!r}: exporting {folder} failed: {err}") from None
                continue
        if verified["ok"]:
            return ExportedModel(model, place / verified["file"], name, scored, threads)
        if runtime != "auto":
            raise ValueError(f"runtime={runtime!r}: the exported graph of {folder} differs from Keras by "
                             f"{verified['max_diff_px']:.3g} px (> {TOLERANCE_PX}); use runtime='keras'")
    return model


def _verified(place, key):
    """The cached ``verified.json`` when it belongs to ``key`` and its file is there, else None."""
    try:
        record = json.loads((place / "verified.json").read_text())
    except (OSError, ValueError):
        return None
    if record.get("key") != key or not (place / record.get("file", "")).is_file():
        return None
    return record


def _export_and_verify(model, place, key, runtime, scored=False):
    """Export into a temporary folder, compare with Keras on the probe crops, then rename into place.

    ``scored``: export ``flzoo.confidence.scored_model`` (points + point confidence); the points are checked."""
    tmp = place.with_name(place.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        file = f"model{SUFFIX[runtime]}"
        graph = None
        if scored:
            from flzoo.confidence import scored_model

            graph = scored_model(model)
        export_model(model, tmp / file, runtime, graph=graph)
        probe = _probe(model.input_size)
        expected = model.predict_points(probe)
        runner = RUNNERS[runtime](tmp / file)
        diff = float(np.abs(runner(probe)[..., :2] - expected).max())
        record = {"key": key, "file": file, "runtime": runtime, "max_diff_px": diff, "ok": diff <= TOLERANCE_PX,
                  "scored": scored}
        (tmp / "verified.json").write_text(json.dumps(record, indent=1) + "\n")
        shutil.rmtree(place, ignore_errors=True)
        os.replace(tmp, place)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return record


__all__ = ["FORMATS", "SUFFIX", "RUNTIMES", "TOLERANCE_PX", "export_model", "runtime_model", "ExportedModel",
           "available", "cache_key", "litert_interpreter", "litert_runner", "onnx_runner", "RUNNERS"]
