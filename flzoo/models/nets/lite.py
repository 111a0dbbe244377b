"""A small CPU backbone (docs/models.md): plain 3x3 convs while the channel count is small and the maps are
large, depthwise-separable blocks below; widths scale with ``width``."""

from flzoo.models.blocks import conv_bn_relu, scaled, separable_bn_relu

# Per output stride: (channels at width 1, blocks, block kind). The first block of each stage has stride 2.
# Full 3x3 convs while channels are few and maps large (depthwise convs with 16-32 channels are memory-bound
# and save few FLOPs there); depthwise-separable blocks where channels are many. Most capacity sits at strides
# 16-32, where it is cheap (4x4 and 8x8 maps at 128 px).
LITE_STAGES = ((2, 16, 1, "conv"), (4, 32, 2, "conv"), (8, 96, 2, "sep"), (16, 192, 4, "sep"), (32, 384, 3, "sep"))


def features(grey, width=1.0):
    """At 128 px and width 1: 64x64x16 -> 32x32x32 -> 16x16x96 -> 8x8x192 -> 4x4x384. Returns the stride 4-32
    features (stride 2 is too shallow to be a useful shortcut)."""
    x = grey
    out = {}
    for stride, channels, blocks, kind in LITE_STAGES:
        filters = scaled(channels, width)
        for i in range(1, blocks + 1):
            name = f"lite_s{stride}_{kind}{i}"
            strides = 2 if i == 1 else 1
            if kind == "conv":
                x = conv_bn_relu(x, filters, strides=strides, name=name)
            else:
                x = separable_bn_relu(x, filters, strides=strides, name=name)
        out[f"s{stride}"] = x
    return {k: v for k, v in out.items() if k != "s2"}
