"""Heads: from the backbone's feature dict (keys ``"s4"`` .. ``"s32"``, see ``backbones.py``) to outputs.

- ``fcn8s``: the paper's decoder: 1x1 conv to C at stride 32, transposed conv 4x4/2 added to the stride-16
  shortcut (pool4), transposed conv 4x4/2 added to the stride-8 shortcut (pool3), transposed conv 16x16/8 to C
  at the input resolution. Outputs are raw logits / maps (no activation); the losses apply softmax.
- ``lite_maps``: a light FPN-style decoder to stride 4 (docs/models.md).
- ``direct``: [1x1 conv ->] flatten -> dropout -> [Dense -> BN -> ReLU]* -> Dense 136 -> (68, 2) points in input pixels.
"""

from keras import layers

from flzoo.landmarks import NUM_POINTS
from flzoo.models.blocks import scaled, separable_bn_relu
from flzoo.models.layers import PixelCoordinates


def fcn8s(features, channels):
    """Paper decoder; output stride 1. The transposed convs take the shortcuts' channel counts (512, 256 in
    the paper), so the head also works on narrower backbones."""
    s8, s16, s32 = features["s8"], features["s16"], features["s32"]
    x = layers.Conv2D(channels, 1, name="fcn_score")(s32)
    x = layers.Conv2DTranspose(s16.shape[-1], 4, strides=2, padding="same", name="fcn_up16")(x)
    x = layers.Add(name="fcn_skip16")([x, s16])
    x = layers.Conv2DTranspose(s8.shape[-1], 4, strides=2, padding="same", name="fcn_up8")(x)
    x = layers.Add(name="fcn_skip8")([x, s8])
    return layers.Conv2DTranspose(channels, 16, strides=8, padding="same", name="fcn_out")(x)


# Lite decoder channels at strides 16, 8 and 4 (width 1).
LITE_DECODER = (("s16", 128), ("s8", 64), ("s4", 48))


def lite_maps(features, channels, width=1.0):
    """Top-down decoder to stride 4 (32x32 maps at 128 px).

    Each level: nearest 2x upsampling of the coarser level + a 1x1 lateral projection of the backbone feature,
    then one depthwise-separable block. Stride 4 keeps only 48 channels (the old 128-ch FPN head spent most of
    the time there); a 1x1 conv gives the C logits."""
    x = layers.Conv2D(scaled(LITE_DECODER[0][1], width), 1, use_bias=False, name="dec_s32_proj")(features["s32"])
    for level, level_channels in LITE_DECODER:
        filters = scaled(level_channels, width)
        if x.shape[-1] != filters:
            x = layers.Conv2D(filters, 1, use_bias=False, name=f"dec_{level}_reduce")(x)
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"dec_{level}_up")(x)
        lateral = layers.Conv2D(filters, 1, use_bias=False, name=f"dec_{level}_lateral")(features[level])
        x = layers.Add(name=f"dec_{level}_add")([x, lateral])
        x = layers.BatchNormalization(name=f"dec_{level}_bn")(x)
        x = layers.ReLU(name=f"dec_{level}_relu")(x)
        x = separable_bn_relu(x, filters, name=f"dec_{level}_sep")
    return layers.Conv2D(channels, 1, name="dec_out")(x)


def direct(features, input_size, hidden=(1024, 256), dropout=0.5, reduce=None):
    """Direct regression from the stride-32 features. The last Dense predicts points centred on the crop in
    units of its side; ``PixelCoordinates`` turns them into input pixels. ``reduce``: channels of a 1x1
    convolution before the flatten (a wide backbone's 1,280 channels would make the first Dense most of the
    model)."""
    x = features["s32"]
    if reduce:
        x = layers.Conv2D(reduce, 1, use_bias=False, name="direct_reduce")(x)
        x = layers.BatchNormalization(name="direct_reduce_bn")(x)
        x = layers.ReLU(name="direct_reduce_relu")(x)
    x = layers.Flatten(name="direct_flatten")(x)
    if dropout:
        x = layers.Dropout(dropout, name="direct_dropout")(x)
    for i, units in enumerate(hidden, start=1):
        x = layers.Dense(units, name=f"direct_fc{i}")(x)
        x = layers.BatchNormalization(name=f"direct_fc{i}_bn")(x)
        x = layers.ReLU(name=f"direct_fc{i}_relu")(x)
    x = layers.Dense(NUM_POINTS * 2, name="direct_points")(x)
    x = layers.Reshape((NUM_POINTS, 2), name="direct_reshape")(x)
    return PixelCoordinates(input_size, name="direct_pixels")(x)


__all__ = ["fcn8s", "lite_maps", "LITE_DECODER", "direct"]
