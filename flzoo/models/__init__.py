"""Model builders: ``build(variant, backbone, input_size, **options) -> LandmarkModel``.

Importing this package is cheap; Keras is imported when a model is built. Architecture choices and parameter
counts are in docs/models.md.
"""

from flzoo.models.backbones import BACKBONES as _BACKBONE_TABLE
from flzoo.models.backbones import get_backbone
from flzoo.models.variants import VARIANTS as _VARIANT_TABLE
from flzoo.models.variants import get_variant

VARIANTS = tuple(_VARIANT_TABLE)
BACKBONES = tuple(_BACKBONE_TABLE)

# Options build() hands to LandmarkModel (training / decoding settings, kept in the config for rebuilding).
MODEL_OPTIONS = ("decoding", "alpha", "beta", "adv_weight", "disc_steps", "det_steps", "sigma")


def _architecture_options(variant, backbone):
    """Names of the architecture options ``build`` accepts for this variant and backbone."""
    output = get_variant(variant).output
    if output == "stages":
        return ("mean_shape", "stages")
    names = get_backbone(backbone).options
    if output == "points":
        names += ("dropout",)
    if get_variant(variant).adversarial:
        names += ("discriminator",)
    return names


def _check(variant, backbone, input_size, options):
    output = get_variant(variant).output
    spec = get_backbone(backbone)
    if output == "stages" and spec.dan_scale is None:
        dan = ", ".join(name for name, b in _BACKBONE_TABLE.items() if b.dan_scale)
        raise ValueError(f"variant={variant!r} has its own DAN networks, at the scale of backbone {dan}; "
                         f"backbone={backbone!r} has none")
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size <= 0:
        raise ValueError(f"input_size={input_size!r}: expected a positive integer")
    if output != "stages" and input_size % 32:
        raise ValueError(f"input_size={input_size}: the {backbone} backbone needs a multiple of 32 "
                         f"(five stride-2 steps whose maps the heads add back together)")
    allowed = _architecture_options(variant, backbone) + MODEL_OPTIONS
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"build option(s) {', '.join(unknown)} not understood for variant={variant!r}, "
                         f"backbone={backbone!r}: expected some of {', '.join(allowed)}")
    width = options.get("width", 1.0)
    if isinstance(width, bool) or not isinstance(width, (int, float)) or width <= 0:
        raise ValueError(f"width={width!r}: expected a positive number (the lite channel multiplier)")
    if not isinstance(options.get("discriminator", True), bool):
        raise ValueError(f"discriminator={options['discriminator']!r}: expected true (train it) or false (an "
                         f"inference copy without it)")
    freeze = options.get("freeze", 0)
    if freeze not in (0, 2, 4, 8, 16, 32):
        raise ValueError(f"freeze={freeze!r}: expected 0 (train everything) or an output stride 2, 4, 8, 16 "
                         f"or 32 up to which the backbone's layers stay frozen")


def resolve_input_size(variant, backbone, input_size=None):
    if input_size is not None:
        return input_size
    return get_variant(variant).input_size or get_backbone(backbone).default_input_size


def build_network(variant, backbone="vgg19_fcn", input_size=None, **options):
    """The Keras networks of a variant: ``(network, stride, discriminator or None)``.

    ``stride`` is the output stride of the map variants (1 for the paper's FCN, 4 for lite) and 1 for the
    point variants. Options meant for ``LandmarkModel`` (``MODEL_OPTIONS``) are accepted and ignored here."""
    import keras

    from flzoo.models import backbones, heads
    from flzoo.models.discriminator import discriminator
    from flzoo.models.layers import GreyInput, ImageNorm

    input_size = resolve_input_size(variant, backbone, input_size)
    _check(variant, backbone, input_size, options)
    arch = {k: v for k, v in options.items() if k not in MODEL_OPTIONS}
    spec, kind = get_backbone(backbone), get_variant(variant)

    if kind.output == "stages":
        from flzoo.models.cascaded import cascaded_network

        return cascaded_network(input_size=input_size, scale=spec.dan_scale, **arch), 1, None

    image = keras.Input((input_size, input_size, 3), name="image")
    if spec.colour == "grey":
        x = GreyInput(name="grey")(image)
    else:
        x = ImageNorm(spec.mean, spec.std, name="imagenet_norm")(image)
    features = backbones.backbone_features(backbone, x, **{k: arch[k] for k in spec.options if k in arch})
    if kind.output == "points":
        head = dict(spec.direct_head)
        head["dropout"] = arch.get("dropout", head["dropout"])
        output, stride = heads.direct(features, input_size, **head), 1
    elif spec.map_head == "lite_maps":
        output = heads.lite_maps(features, kind.map_channels, width=arch.get("width", 1.0))
        stride = spec.map_stride
    else:
        output, stride = heads.fcn8s(features, kind.map_channels), spec.map_stride
    network = keras.Model(image, output, name=f"{variant}_{backbone}")
    disc = discriminator() if kind.adversarial and arch.get("discriminator", True) else None
    return network, stride, disc


def build(variant, backbone="vgg19_fcn", input_size=None, **options):
    """Build a variant as a ``LandmarkModel`` whose ``build_config()`` rebuilds it with ``build(**config)``.

    ``input_size=None`` picks the default for the variant and backbone (``resolve_input_size``); the config
    records the resolved size. Options: ``width`` (lite channel multiplier), ``freeze`` (ImageNet backbones:
    output stride up to which their layers stay frozen), ``dropout`` (direct),
    ``mean_shape`` / ``stages`` (cascaded), ``discriminator`` (+disc variants; ``False`` builds an inference copy
    without the shape discriminator, see ``inference_copy``), and the ``LandmarkModel`` settings in
    ``MODEL_OPTIONS``."""
    from flzoo.models.landmark_model import LandmarkModel

    input_size = resolve_input_size(variant, backbone, input_size)
    network, stride, disc = build_network(variant, backbone, input_size, **options)
    config = {"variant": variant, "backbone": backbone, "input_size": input_size, **_plain(options)}
    model_options = {k: v for k, v in options.items() if k in MODEL_OPTIONS}
    return LandmarkModel(network, variant, input_size, stride=stride, discriminator=disc, config=config,
                         **model_options)


def inference_copy(model):
    """``model`` without its shape discriminator, which only training uses: the same network and weights in a
    smaller file (what the bundled +disc presets store). Other models come back as they are."""
    if model.discriminator is None:
        return model
    config = {**model.build_config(), "discriminator": False}
    copy = build(**config)
    if len(copy.network.weights) != len(model.network.weights):
        raise ValueError(f"inference_copy: {len(copy.network.weights)} network variables, the model has "
                         f"{len(model.network.weights)}")
    for target, source in zip(copy.network.weights, model.network.weights):
        if target.path != source.path or tuple(target.shape) != tuple(source.shape):
            raise ValueError(f"inference_copy: variable {target.path!r} does not match {source.path!r}")
        target.assign(source)
    saved = getattr(model, "flzoo_config", None)  # its file's config (the crop protocol among it)
    copy.flzoo_config = None if saved is None else {**saved, "build": config}
    return copy


def _plain(options):
    """Options as JSON-ready values (a numpy mean shape becomes nested lists) for ``config.json``."""
    out = {}
    for key, value in options.items():
        out[key] = value.tolist() if hasattr(value, "tolist") else value
    return out


__all__ = ["VARIANTS", "BACKBONES", "MODEL_OPTIONS",
           "build", "build_network", "inference_copy", "resolve_input_size"]
