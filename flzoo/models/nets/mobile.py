"""ImageNet backbones of the inverted-residual family, rebuilt in Keras so that their published PyTorch weights
load one to one (``flzoo.models.pretrained``):

- ``mobilenet_v2``: torchvision's MobileNetV2 (width 1). Convs pad symmetrically (``padding=k // 2``).
- ``efficientnet_lite0``: EfficientNet-Lite0 (no squeeze-excite, ReLU6, fixed stem and head), the
  EfficientNet-PyTorch port of the TF Lite weights: TF "same" padding, which Keras' ``padding="same"`` is.

Every layer is named after the PyTorch module it takes its weights from (``features.3.conv.1.0``,
``blocks.4._depthwise_conv`` for ``_blocks.4._depthwise_conv``: ``keras_name`` drops a leading underscore, which
TensorFlow's SavedModel export refuses), so conversion needs no per-network table. ``features`` returns the outputs of
the last block at each stride (stride 32: the 1280-channel head conv); ``freeze=S`` makes every layer up to
output stride S untrainable, its batch norms then run in inference mode (Keras does this for a BN layer whose
``trainable`` is False).
"""

from dataclasses import dataclass

from keras import layers


@dataclass(frozen=True)
class MobileNet:
    name: str
    # Stages (expansion, out channels, repeats, stride of the first block, kernel); stem and head channels.
    stages: tuple
    stem: int
    head: int
    bn_epsilon: float
    tf_padding: bool  # True: TF "same" (asymmetric at stride 2); False: torch's symmetric k // 2
    # PyTorch module names: stem conv / BN, head conv / BN, classifier.
    stem_names: tuple
    head_names: tuple
    classifier_name: str

    def block_names(self, index, expand):
        """``{"expand", "expand_bn", "dw", "dw_bn", "project", "project_bn"}`` -> module names of block ``index``."""
        if self.name == "efficientnet_lite0":
            p = f"_blocks.{index}"
            names = {"expand": f"{p}._expand_conv", "expand_bn": f"{p}._bn0", "dw": f"{p}._depthwise_conv",
                     "dw_bn": f"{p}._bn1", "project": f"{p}._project_conv", "project_bn": f"{p}._bn2"}
            return names
        p = f"features.{index + 1}.conv"  # torchvision: features.0 is the stem
        first = 1 if expand else 0  # torchvision drops the expansion ConvBNReLU when t == 1
        names = {"dw": f"{p}.{first}.0", "dw_bn": f"{p}.{first}.1", "project": f"{p}.{first + 1}",
                 "project_bn": f"{p}.{first + 2}"}
        if expand:
            names.update(expand=f"{p}.0.0", expand_bn=f"{p}.0.1")
        return names


NETWORKS = {
    "mobilenet_v2": MobileNet(
        name="mobilenet_v2",
        stages=((1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 32, 3, 2, 3), (6, 64, 4, 2, 3), (6, 96, 3, 1, 3),
                (6, 160, 3, 2, 3), (6, 320, 1, 1, 3)),
        stem=32, head=1280, bn_epsilon=1e-5, tf_padding=False,
        stem_names=("features.0.0", "features.0.1"), head_names=("features.18.0", "features.18.1"),
        classifier_name="classifier.1"),
    "efficientnet_lite0": MobileNet(
        name="efficientnet_lite0",
        stages=((1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 3, 2, 3), (6, 112, 3, 1, 5),
                (6, 192, 4, 2, 5), (6, 320, 1, 1, 3)),
        stem=32, head=1280, bn_epsilon=1e-3, tf_padding=True,
        stem_names=("_conv_stem", "_bn0"), head_names=("_conv_head", "_bn1"), classifier_name="_fc"),
}


def keras_name(module):
    """The Keras layer name of PyTorch module ``module``."""
    return module.lstrip("_")


class _Builder:
    """Creates the layers of one network. ``stage`` is the output stride of the block being built (a block's
    expansion conv still runs at the previous stride but belongs to the block); ``freeze`` stops training every
    layer of a block whose output stride is at most ``freeze``."""

    def __init__(self, net, freeze):
        self.net, self.freeze, self.stage = net, freeze, 1

    def _frozen(self, layer):
        layer.trainable = self.stage > self.freeze
        return layer

    def conv(self, x, filters, kernel, stride, name, depthwise=False):
        padding = "same"
        name = keras_name(name)
        if stride > 1 and not self.net.tf_padding:
            x = layers.ZeroPadding2D(kernel // 2, name=f"{name}.pad")(x)
            padding = "valid"
        if depthwise:
            layer = layers.DepthwiseConv2D(kernel, strides=stride, padding=padding, use_bias=False, name=name)
        else:
            layer = layers.Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=False, name=name)
        return self._frozen(layer)(x)

    def bn(self, x, name, relu=True):
        # momentum 0.9 = torch's 0.1 (the moving statistics' update rate)
        name = keras_name(name)
        x = self._frozen(layers.BatchNormalization(epsilon=self.net.bn_epsilon, momentum=0.9, name=name))(x)
        return layers.ReLU(max_value=6.0, name=f"{name}.relu6")(x) if relu else x

    def block(self, x, index, expand, filters, stride, kernel):
        self.stage *= stride
        names = self.net.block_names(index, expand != 1)
        inputs = x
        if expand != 1:
            x = self.conv(x, x.shape[-1] * expand, 1, 1, names["expand"])
            x = self.bn(x, names["expand_bn"])
        x = self.conv(x, None, kernel, stride, names["dw"], depthwise=True)
        x = self.bn(x, names["dw_bn"])
        x = self.conv(x, filters, 1, 1, names["project"])
        x = self.bn(x, names["project_bn"], relu=False)
        if stride == 1 and inputs.shape[-1] == filters:
            x = layers.Add(name=f"{keras_name(names['project'])}.residual")([x, inputs])
        return x


def features(x, network="mobilenet_v2", freeze=0):
    """The stride 4-32 features of ``network`` for an ImageNet-normalised RGB tensor ``x``."""
    net = NETWORKS[network]
    b = _Builder(net, freeze)
    b.stage = 2
    x = b.bn(b.conv(x, net.stem, 3, 2, net.stem_names[0]), net.stem_names[1])
    out, index = {}, 0
    for expand, filters, repeats, first_stride, kernel in net.stages:
        for i in range(repeats):
            x = b.block(x, index, expand, filters, first_stride if i == 0 else 1, kernel)
            out[f"s{b.stage}"] = x
            index += 1
    x = b.bn(b.conv(x, net.head, 1, 1, net.head_names[0]), net.head_names[1])
    out["s32"] = x
    return {k: out[k] for k in ("s4", "s8", "s16", "s32")}


def classifier(x, network="mobilenet_v2"):
    """ImageNet-1k logits (the source network's own head), for checking converted weights."""
    s32 = features(x, network)["s32"]
    pooled = layers.GlobalAveragePooling2D(name="pool")(s32)
    return layers.Dense(1000, name=keras_name(NETWORKS[network].classifier_name))(pooled)


__all__ = ["NETWORKS", "features", "classifier", "keras_name"]
