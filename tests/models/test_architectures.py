"""Architectures: paper parameter counts, lite variants, serialisation, and identical outputs on all backends."""

import gc
import json
import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from flzoo.models import VARIANTS, build_network  # noqa: E402
from flzoo.models.backbones import BACKBONES as BACKBONE_TABLE  # noqa: E402
from flzoo.paths import REPO_ROOT  # noqa: E402

# Trainable parameters in the paper (docs/paper.md); *_disc variants count network + discriminator.
PAPER_COUNTS = {
    "direct": 178_682_440,
    "cascaded": 35_053_144,
    "distribution": 82_871_880,
    "heatmap_reg": 82_947_658,
    "pwc": 82_947_658,
    "pwc_disc": 82_947_658 + 34_689,
    "hybrid": 82_947_658,
    "hybrid_disc": 82_982_347,
}

# Trainable parameters of the default lite builds (128 px; cascaded: scale="lite" at 112 px), docs/models.md.
LITE_COUNTS = {
    "direct": 2_156_328,
    "cascaded": 2_141_256,
    "distribution": 670_132,
    "heatmap_reg": 670_181,
    "pwc": 670_181,
    "pwc_disc": 670_181 + 34_689,
    "hybrid": 670_181,
    "hybrid_disc": 704_870,
}


def trainable(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def free():
    """Release the models the caller has deleted (the paper models take 0.3-0.7 GB each)."""
    keras.backend.clear_session()
    gc.collect()


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_paper_trainable_parameter_counts(variant):
    network, stride, disc = build_network(variant)
    count = trainable(network) + (trainable(disc) if disc is not None else 0)
    expected = PAPER_COUNTS[variant]
    assert count == expected, f"{variant}: {count:,} trainable, paper {expected:,}"
    assert stride == 1
    if variant == "cascaded":
        assert network.output_shape[-2:] == (68, 2)
    elif variant == "direct":
        assert network.output_shape == (None, 68, 2)
    else:
        assert network.output_shape == (None, 224, 224, 68 if variant == "distribution" else 69)
    assert (disc is not None) == variant.endswith("_disc")
    del network, disc
    free()


def test_discriminator_matches_paper_and_is_named_for_selection():
    network, _, disc = build_network("pwc_disc", "lite", 64, width=0.25)
    assert trainable(disc) == 34_689
    assert disc.input_shape == (None, 68, 2) and disc.output_shape == (None, 1)
    assert all(layer.name.startswith("disc_") for layer in disc.layers)
    assert not any(layer.name.startswith("disc_") for layer in network.layers)
    del network, disc
    free()


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_builds_and_runs_with_the_lite_backbone(variant):
    network, stride, disc = build_network(variant, "lite")
    count = trainable(network) + (trainable(disc) if disc is not None else 0)
    assert count == LITE_COUNTS[variant], f"{variant} lite: {count:,} trainable, expected {LITE_COUNTS[variant]:,}"
    size = network.input_shape[1]
    x = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32")
    y = keras.ops.convert_to_numpy(network(x, training=False))
    assert np.isfinite(y).all()
    if variant == "cascaded":
        assert y.shape[0] == 2 and y.shape[-2:] == (68, 2)
    elif variant == "direct":
        assert (size, stride, y.shape) == (128, 1, (2, 68, 2))
    else:
        channels = 68 if variant == "distribution" else 69
        assert (size, stride, y.shape) == (128, 4, (2, 32, 32, channels))
    del network, disc
    free()


IMAGENET_BACKBONES = [name for name, spec in BACKBONE_TABLE.items() if spec.colour == "rgb"]


@pytest.mark.parametrize("backbone", IMAGENET_BACKBONES)
@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "cascaded"])
def test_every_variant_builds_and_runs_on_the_imagenet_backbones(variant, backbone):
    network, stride, _ = build_network(variant, backbone, 64)
    y = keras.ops.convert_to_numpy(network(np.full((1, 64, 64, 3), 127.0, "float32"), training=False))
    assert np.isfinite(y).all()
    if variant == "direct":
        assert (stride, y.shape) == (1, (1, 68, 2))
    else:
        assert (stride, y.shape) == (BACKBONE_TABLE[backbone].map_stride, (1, 16, 16, 68 if variant == "distribution"
                                                                           else 69))
    del network
    free()


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "cascaded"])
def test_every_mobilenet_v2_variant_fits_a_bundled_file(variant):
    """Every variant on the zoo's backbone at its input size stores in float32 under the bundled-file limit
    (the direct head's 1x1 reduction keeps the 1,280 stride-32 channels from making it 30 MB)."""
    from flzoo.registry import MAX_BUNDLED_BYTES

    network, _, _ = build_network(variant, "mobilenet_v2", 128)
    assert 4 * network.count_params() < MAX_BUNDLED_BYTES - 50_000  # the header: ~30 kB (hybrid.mnv2: 29,032)
    del network
    free()


@pytest.mark.parametrize("backbone", IMAGENET_BACKBONES)
def test_freeze_stops_training_up_to_the_stride_and_sees_colour(backbone):
    """``freeze=S`` leaves every backbone layer of stride <= S untrainable, the decoder trainable; the RGB
    backbones see colour (a channel permutation changes the maps, unlike the grey ones)."""
    counts = {f: trainable(build_network("pwc", backbone, 64, freeze=f)[0]) for f in (0, 8, 32)}
    assert counts[0] > counts[8] > counts[32] > 0
    network = build_network("pwc", backbone, 64, freeze=8)[0]
    frozen = {layer.name for layer in network.layers if layer.weights and not layer.trainable}
    assert frozen
    assert not any(name.startswith("dec_") for name in frozen)
    x = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    a = keras.ops.convert_to_numpy(network(x, training=False))
    b = keras.ops.convert_to_numpy(network(x[..., ::-1].copy(), training=False))
    assert np.abs(a - b).max() > 0.05 * np.abs(a).max()
    del network
    free()


def test_networks_see_grey_only():
    """The grey conversion is the channel mean, so permuting R, G, B cannot change any output."""
    network, _, _ = build_network("pwc", "lite", 64, width=0.25)
    x = np.random.default_rng(1).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    a = keras.ops.convert_to_numpy(network(x, training=False))
    b = keras.ops.convert_to_numpy(network(x[..., ::-1].copy(), training=False))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    del network
    free()


def test_grey_input_and_pixel_coordinate_layers():
    from flzoo.models.layers import GreyInput, PixelCoordinates

    rgb = np.zeros((1, 2, 2, 3), "float32")
    rgb[0, 0, 0] = (255, 0, 0)
    rgb[0, 1, 1] = (30, 60, 90)
    grey = keras.ops.convert_to_numpy(GreyInput()(rgb))
    assert grey.shape == (1, 2, 2, 1)
    np.testing.assert_allclose(grey[0, :, :, 0], [[1 / 3, 0], [0, 60 / 255]], rtol=1e-6)
    # A normalised point at 0 is the crop centre; +-0.5 are the outer pixel edges (pixel centres at integers).
    pts = keras.ops.convert_to_numpy(PixelCoordinates(128)(np.array([[[0.0, -0.5], [0.5, 0.25]]], "float32")))
    np.testing.assert_allclose(pts, [[[63.5, -0.5], [127.5, 95.5]]])


def test_direct_points_start_near_the_crop_centre():
    network, _, _ = build_network("direct", "lite", 64, width=0.25)
    x = np.random.default_rng(2).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    points = keras.ops.convert_to_numpy(network(x, training=False))
    assert np.abs(points - 31.5).max() < 64, "an untrained direct model should predict inside the crop"
    del network
    free()


def test_network_rebuilds_from_its_serialised_config(tmp_path):
    network, _, _ = build_network("direct", "lite", 64, width=0.25)
    path = tmp_path / "net.weights.h5"
    network.save_weights(path)
    clone = keras.models.model_from_json(network.to_json())
    clone.load_weights(path)
    x = np.random.default_rng(3).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(network(x, training=False)),
                               keras.ops.convert_to_numpy(clone(x, training=False)), rtol=1e-5, atol=1e-4)
    assert [type(layer).__name__ for layer in clone.layers] == [type(layer).__name__ for layer in network.layers]
    del network, clone
    free()


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"variant": "pwc2"}, ["variant='pwc2'", "hybrid_disc"]),
        ({"variant": "pwc", "backbone": "resnet"}, ["backbone='resnet'", "lite"]),
        ({"variant": "pwc", "backbone": "lite", "input_size": 100}, ["input_size=100", "multiple of 32"]),
        ({"variant": "pwc", "backbone": "lite", "input_size": "128"}, ["input_size='128'", "positive integer"]),
        ({"variant": "pwc", "backbone": "lite", "depth": 3}, ["depth", "width"]),
        ({"variant": "pwc", "width": 1.0}, ["width", "backbone='vgg19_fcn'"]),
        ({"variant": "pwc", "backbone": "lite", "width": -1}, ["width=-1", "positive"]),
        ({"variant": "pwc", "backbone": "mobilenet_v2", "freeze": 3}, ["freeze=3", "output stride"]),
        ({"variant": "pwc", "backbone": "mobilenet_v2", "width": 0.5}, ["width", "freeze"]),
        ({"variant": "cascaded", "backbone": "mobilenet_v2"}, ["cascaded", "mobilenet_v2", "lite"]),
    ],
)
def test_bad_build_arguments_name_the_value_and_what_was_expected(kwargs, words):
    with pytest.raises(ValueError) as info:
        build_network(**kwargs)
    for word in words:
        assert word in str(info.value)


def test_build_returns_a_landmark_model_with_a_rebuilding_config():
    from flzoo.models import build
    from flzoo.models.landmark_model import LandmarkModel

    model = build("hybrid_disc", backbone="lite", input_size=64, width=0.25, beta=0.5)
    assert isinstance(model, LandmarkModel)
    assert model.build_config() == {"variant": "hybrid_disc", "backbone": "lite", "input_size": 64,
                                    "width": 0.25, "beta": 0.5}
    assert model.discriminator is not None
    del model
    free()


# Build tiny networks with fixed weights in this (TensorFlow) process, then rebuild them on JAX and PyTorch and
# compare outputs: catches backend-specific layer semantics (transposed-conv padding, upsampling, BN).
CROSS_BACKEND_CODE = """
import json, sys
import numpy as np
import keras
sys.path.insert(0, {tests!r})
from test_architectures import tiny_networks
out = {{}}
for name, net in tiny_networks().items():
    net.load_weights({folder!r} + "/" + name + ".weights.h5")
    arrays = np.load({folder!r} + "/" + name + "_x.npz")
    x = [arrays[f"x{{i}}"] for i in range(len(arrays.files))]
    # predict() compiles the whole graph once (jax.jit), much faster than JAX's op-by-op first calls.
    out[name] = net.predict(x if len(x) > 1 else x[0], verbose=0).tolist()
print(json.dumps(out))
"""


def tiny_networks():
    """Small networks covering every layer the builders use, including the paper's FCN-8s decoder."""
    from flzoo.models.blocks import conv_bn_relu
    from flzoo.models.discriminator import discriminator
    from flzoo.models.heads import fcn8s

    nets = {name: build_network(name, "lite", 64, width=0.25)[0] for name in ("pwc", "direct")}
    feats = {"s8": keras.Input((8, 8, 8)), "s16": keras.Input((4, 4, 16)), "s32": keras.Input((2, 2, 32))}
    deep = {k: conv_bn_relu(v, v.shape[-1], name=f"f{k}") for k, v in feats.items()}
    nets["fcn8s"] = keras.Model(list(feats.values()), fcn8s(deep, 5))
    nets["disc"] = discriminator()
    return nets


def _inputs(name, net, rng):
    if name == "fcn8s":
        return [rng.normal(size=(2,) + tuple(t.shape[1:])).astype("float32") for t in net.inputs]
    return rng.uniform(0, 255 if name != "disc" else 1, (2,) + tuple(net.input_shape[1:])).astype("float32")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_networks_give_the_same_outputs_on_every_backend(backend, on_backend, tmp_path):
    rng = np.random.default_rng(4)
    expected = {}
    for name, net in tiny_networks().items():
        # Non-trivial BN statistics, so inference-mode batch norm is exercised too.
        for layer in net.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.moving_mean.assign(rng.normal(0, 0.5, layer.moving_mean.shape).astype("float32"))
                layer.moving_variance.assign(rng.uniform(0.5, 1.5, layer.moving_variance.shape).astype("float32"))
        x = _inputs(name, net, rng)
        net.save_weights(tmp_path / f"{name}.weights.h5")
        xs = x if isinstance(x, list) else [x]
        np.savez(tmp_path / f"{name}_x.npz", **{f"x{i}": a for i, a in enumerate(xs)})
        expected[name] = keras.ops.convert_to_numpy(net(x, training=False))
    got = on_backend(backend, CROSS_BACKEND_CODE.format(tests=str(Path(__file__).parent), folder=str(tmp_path)))
    for name, value in expected.items():
        np.testing.assert_allclose(np.array(got[name]), value, rtol=1e-4, atol=1e-4, err_msg=f"{name} on {backend}")


def test_bench_tool_reports_training_and_inference_figures(capsys):
    sys.path.insert(0, str(REPO_ROOT / "tools"))
    import bench_models

    result = bench_models.main(["--input-size", "64", "--width", "0.25", "--batch", "4", "--warmup", "1",
                                "--train-batches", "2", "--infer-runs", "3"])
    assert result["output_shape"] == [16, 16, 69] and result["stride"] == 4
    assert result["train_img_per_s"] > 0 and result["infer_ms_batch1"] > 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["variant"] == "pwc"
