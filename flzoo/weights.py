"""Model files: ``model.safetensors`` + ``config.json`` in a folder.

Tensors are keyed by Keras's public ``Variable.path`` (``block3_conv/kernel``, ``network/...``): every flzoo layer
that holds weights has a fixed name, so the paths are the same in every build, session and backend
(``tests/test_weights.py`` checks this for every variant and backbone). Loading rebuilds the model from flzoo
code (``flzoo.models.build(**config["build"])``) and copies the tensors in; nothing is unpickled, and every key
and shape is checked before the first variable is written, so a bad file never leaves a half-loaded model.
``save_model(..., dtype="float16")`` stores floating tensors at half size (bundled presets whose points move by
less than 0.05 px: ``tools/bundle_run.py`` measures it); loading casts them back to the variables' dtype.
"""

import json
import os
from pathlib import Path

import numpy as np

from flzoo.data.crop import CropProtocol
from flzoo.landmarks import NUM_POINTS
from flzoo.version import __version__

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "flzoo"  # safetensors metadata "format"


def _version_tuple(text):
    parts = str(text).split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


def check_version(file_version, path):
    """Refuse files written by an incompatible flzoo: another major version, a newer minor version, or for
    0.x releases any other minor version (0.x may change the format between minors)."""
    ours, theirs = _version_tuple(__version__), _version_tuple(file_version)
    if theirs is None:
        raise ValueError(f"{path}: flzoo_version={file_version!r} is not a version like '0.1.0'")
    ok = theirs[0] == ours[0] and (theirs[1] == ours[1] if ours[0] == 0 else theirs[1] <= ours[1])
    if not ok:
        raise ValueError(f"{path}: written by flzoo {file_version}, which this flzoo {__version__} cannot "
                         f"read (expected flzoo_version {ours[0]}.{ours[1]}.x); install a matching flzoo")


def variable_table(model):
    """``{Variable.path: Variable}`` for the model's weights; refuses a model in which two share a path (two
    layers with one name), which would make a file ambiguous."""
    table = {}
    for var in model.weights:
        if var.path in table:
            raise ValueError(f"cannot key the weights of {model.name!r} by path: {var.path!r} occurs twice (two "
                             f"layers share a name)")
        table[var.path] = var
    return table


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


STORAGE_DTYPES = ("float32", "float16")


def save_model(model, folder, extra=None, dtype="float32"):
    """Write ``folder/model.safetensors`` and ``folder/config.json`` for a ``LandmarkModel``.

    ``extra`` (a JSON-ready dict) is merged into ``config.json``; its ``metrics`` key fills ``metrics``.
    ``dtype``: how floating tensors are stored (``float16`` halves the file; recorded as ``storage``).
    Files are written then renamed, so an interrupted save never leaves a truncated file under the final name."""
    import keras
    from safetensors.numpy import save_file

    if dtype not in STORAGE_DTYPES:
        raise ValueError(f"save_model dtype={dtype!r}: expected one of {', '.join(STORAGE_DTYPES)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = variable_table(model)
    # np.array, not np.ascontiguousarray, which turns a 0-d variable into shape (1,)
    tensors = {key: np.array(keras.ops.convert_to_numpy(var), order="C") for key, var in table.items()}
    tensors = {key: t.astype(dtype) if np.issubdtype(t.dtype, np.floating) else t for key, t in tensors.items()}
    trainable = {id(v) for v in model.trainable_weights}
    extra = dict(extra or {})
    config = {
        "flzoo_version": __version__,
        "keras_version": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "build": _jsonable(model.build_config()),
        "input_size": int(model.input_size),
        "num_points": NUM_POINTS,
        "decoding": getattr(model, "decoding", None),
        "params": {"trainable": int(sum(np.prod(v.shape) for v in model.weights if id(v) in trainable)),
                   "total": int(sum(np.prod(v.shape) for v in model.weights))},
        "metrics": _jsonable(extra.pop("metrics", {})),
        "storage": {"dtype": dtype},
    }
    config.update(_jsonable(extra))
    tmp_weights = folder / (WEIGHTS_FILE + ".tmp")
    tmp_config = folder / (CONFIG_FILE + ".tmp")
    save_file(tensors, str(tmp_weights), metadata={"format": FORMAT, "flzoo_version": __version__})
    tmp_config.write_text(json.dumps(config, indent=2) + "\n")
    os.replace(tmp_weights, folder / WEIGHTS_FILE)
    os.replace(tmp_config, folder / CONFIG_FILE)
    return folder


def read_config(folder):
    """``config.json`` of a model folder, checked for the fields loading needs."""
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a model folder (expected a folder with {CONFIG_FILE} and {WEIGHTS_FILE})")
    if not path.is_file():
        raise ValueError(f"{path}: missing (a model folder needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(config).__name__}")
    for field in ("flzoo_version", "build"):
        if field not in config:
            raise ValueError(f"{path}: missing field {field!r}")
    if not isinstance(config["build"], dict) or "variant" not in config["build"]:
        raise ValueError(f"{path}: field 'build' must be the build() kwargs with a 'variant', "
                         f"got {config['build']!r}")
    check_version(config["flzoo_version"], path)
    CropProtocol().updated(config.get("crop"), f"{path}: field 'crop'")  # a bad crop names this file
    return config


def load_model(folder):
    """Rebuild the ``LandmarkModel`` saved in ``folder`` and load its weights (all or nothing)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from flzoo.models import build

    folder = Path(folder)
    config = read_config(folder)
    weights_path = folder / WEIGHTS_FILE
    if not weights_path.is_file():
        raise ValueError(f"{weights_path}: missing (a model folder needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{weights_path}: not a readable safetensors file ({err})") from None
    try:
        model = build(**config["build"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{folder / CONFIG_FILE}: field 'build' does not fit flzoo.models.build ({err})") from None
    table = variable_table(model)
    missing = sorted(set(table) - set(tensors))
    extra = sorted(set(tensors) - set(table))
    if missing:
        raise ValueError(f"{weights_path}: missing tensor {missing[0]!r} ({len(missing)} missing) for "
                         f"{config['build']}")
    if extra:
        raise ValueError(f"{weights_path}: unexpected tensor {extra[0]!r} ({len(extra)} not in the model "
                         f"built from {config['build']})")
    for key, var in table.items():
        if tuple(tensors[key].shape) != tuple(var.shape):
            raise ValueError(f"{weights_path}: tensor {key!r} has shape {tuple(tensors[key].shape)}, the model "
                             f"expects {tuple(var.shape)}")
        if not np.can_cast(tensors[key].dtype, np.dtype(var.dtype), casting="same_kind"):
            raise ValueError(f"{weights_path}: tensor {key!r} has dtype {tensors[key].dtype}, the model "
                             f"expects {var.dtype}")
        if np.issubdtype(tensors[key].dtype, np.floating) and not np.isfinite(tensors[key]).all():
            bad = int(np.size(tensors[key]) - np.isfinite(tensors[key]).sum())
            raise ValueError(f"{weights_path}: tensor {key!r} holds {bad} NaN or infinite value(s); the file is "
                             f"damaged or comes from a diverged training run")
    for key, var in table.items():  # everything checked: now write
        var.assign(tensors[key].astype(var.dtype, copy=False))
    model.flzoo_config = config
    return model


__all__ = ["save_model", "load_model", "read_config", "variable_table", "check_version", "WEIGHTS_FILE",
           "CONFIG_FILE"]
