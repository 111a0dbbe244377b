"""Conv blocks shared by the backbones and heads (Keras layers only)."""

from keras import layers


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


def scaled(channels, width):
    """Channels times the width multiplier, rounded to a multiple of 8 (at least 8)."""
    return max(8, int(round(channels * width / 8.0)) * 8)


__all__ = ["conv_bn_relu", "separable_bn_relu", "scaled"]
