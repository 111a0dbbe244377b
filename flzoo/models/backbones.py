"""Feature extractors. Each takes the grey image tensor ``(B, S, S, 1)`` and returns a dict of feature maps
keyed by output stride (``"s4"``, ``"s8"``, ``"s16"``, ``"s32"``) for the heads in ``heads.py``.

- ``vgg19_fcn``: the paper's VGG19-like backbone (NOTES.md): conv blocks 64x2, 128x2, 256x4, 512x4, 512x4 with
  max pools, then a 7x7 conv block to 2048 and a 1x1 conv block to 2048 at stride 32.
- ``lite``: a small CPU backbone (docs/models.md): plain 3x3 convs while the channel count is small and the
  maps are large, depthwise-separable blocks below; widths scale with ``width``.
"""

from keras import layers

BACKBONES = ("vgg19_fcn", "lite")


def conv_bn_relu(x, filters, kernel=3, strides=1, name="conv"):
    """Conv -> batch norm -> ReLU, the paper's conv block."""
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", name=name)(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def separable_bn_relu(x, filters, strides=1, name="sep"):
    """Depthwise 3x3 -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU (MobileNet v1 block, no bias before BN)."""
    x = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = layers.BatchNormalization(name=f"{name}_dw_bn")(x)
    x = layers.ReLU(name=f"{name}_dw_relu")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
    x = layers.BatchNormalization(name=f"{name}_pw_bn")(x)
    return layers.ReLU(name=f"{name}_pw_relu")(x)


# (filters, convs) per VGG19 stage; a 2x2 max pool follows each stage.
VGG19_STAGES = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))


def vgg19_fcn(grey):
    """The paper's backbone. ``s8`` / ``s16`` are the pool3 / pool4 outputs (the FCN-8s shortcuts)."""
    x = grey
    features = {}
    for stage, (filters, convs) in enumerate(VGG19_STAGES, start=1):
        for i in range(1, convs + 1):
            x = conv_bn_relu(x, filters, name=f"block{stage}_conv{i}")
        x = layers.MaxPooling2D(2, name=f"block{stage}_pool")(x)
        if stage >= 3:
            features[f"s{2 ** stage}"] = x
    x = conv_bn_relu(x, 2048, kernel=7, name="conv6")
    features["s32"] = conv_bn_relu(x, 2048, kernel=1, name="conv7")
    return features


# The lite backbone, per output stride: (channels at width 1, blocks, block kind). The first block of each
# stage has stride 2. Full 3x3 convs while channels are few and maps large (depthwise convs with 16-32
# channels are memory-bound and save few FLOPs there); depthwise-separable blocks where channels are many. Most
# capacity sits at strides 16-32, where it is cheap (4x4 and 8x8 maps at 128 px).
LITE_STAGES = ((2, 16, 1, "conv"), (4, 32, 2, "conv"), (8, 96, 2, "sep"), (16, 192, 4, "sep"), (32, 384, 3, "sep"))


def scaled(channels, width):
    """Channels times the width multiplier, rounded to a multiple of 8 (at least 8)."""
    return max(8, int(round(channels * width / 8.0)) * 8)


def lite(grey, width=1.0):
    """Small CPU backbone. At 128 px and width 1: 64x64x16 -> 32x32x32 -> 16x16x96 -> 8x8x192 -> 4x4x384.
    Returns the stride 4-32 features (stride 2 is too shallow to be a useful shortcut)."""
    x = grey
    features = {}
    for stride, channels, blocks, kind in LITE_STAGES:
        filters = scaled(channels, width)
        for i in range(1, blocks + 1):
            name = f"lite_s{stride}_{kind}{i}"
            strides = 2 if i == 1 else 1
            if kind == "conv":
                x = conv_bn_relu(x, filters, strides=strides, name=name)
            else:
                x = separable_bn_relu(x, filters, strides=strides, name=name)
        features[f"s{stride}"] = x
    return {k: v for k, v in features.items() if k != "s2"}


def backbone_features(name, grey, **options):
    if name == "vgg19_fcn":
        return vgg19_fcn(grey)
    if name == "lite":
        return lite(grey, **options)
    raise ValueError(f"backbone={name!r}: expected one of {', '.join(BACKBONES)}")


__all__ = ["BACKBONES", "LITE_STAGES", "vgg19_fcn", "lite", "scaled", "backbone_features", "conv_bn_relu",
           "separable_bn_relu"]
