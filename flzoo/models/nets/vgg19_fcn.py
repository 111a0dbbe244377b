"""The paper's VGG19-like backbone (docs/models.md): conv blocks 64x2, 128x2, 256x4, 512x4, 512x4 with max
pools, then a 7x7 conv block to 2048 and a 1x1 conv block to 2048 at stride 32."""

from keras import layers

from flzoo.models.blocks import conv_bn_relu

# (filters, convs) per VGG19 stage; a 2x2 max pool follows each stage.
VGG19_STAGES = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))


def features(grey):
    """``s8`` / ``s16`` are the pool3 / pool4 outputs (the FCN-8s shortcuts)."""
    x = grey
    out = {}
    for stage, (filters, convs) in enumerate(VGG19_STAGES, start=1):
        for i in range(1, convs + 1):
            x = conv_bn_relu(x, filters, name=f"block{stage}_conv{i}")
        x = layers.MaxPooling2D(2, name=f"block{stage}_pool")(x)
        if stage >= 3:
            out[f"s{2 ** stage}"] = x
    x = conv_bn_relu(x, 2048, kernel=7, name="conv6")
    out["s32"] = conv_bn_relu(x, 2048, kernel=1, name="conv7")
    return out
