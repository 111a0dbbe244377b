"""Tiny functional networks and toy batches for the LandmarkModel / loss / adversarial tests.

Independent of flzoo.models.build so these tests exercise LandmarkModel alone. Importable from subprocesses
started by the ``on_backend`` fixture (they put this folder on sys.path).
"""

import json
from pathlib import Path

import numpy as np

from flzoo.models.variants import VARIANTS

SIZE, STRIDE = 32, 4


def mean_shape(size=SIZE):
    doc = json.loads((Path(__file__).parents[1] / "flzoo" / "assets" / "mean_shape_68.json").read_text())
    return np.asarray(doc["points"], np.float32) * size - 0.5


def tiny_network(variant, size=SIZE):
    # No biases before batch norm: their true gradient is 0, and Adam turns float noise there into full-size
    # steps of random sign, which would make the cross-backend weight comparison meaningless.
    import keras
    from keras import layers

    image = keras.Input((size, size, 3), name="image")
    x = layers.Rescaling(1.0 / 255.0)(image)
    x = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="c1")(x)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU()(x)
    x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="c2")(x)
    x = layers.BatchNormalization(name="bn2")(x)
    x = layers.ReLU()(x)
    spec = VARIANTS[variant]
    if spec.output == "maps":
        out = layers.Conv2D(spec.map_channels, 1, name="head")(x)  # (size/4, size/4, C)
    else:
        x = layers.GlobalAveragePooling2D()(x)
        base = keras.ops.convert_to_tensor(mean_shape(size).reshape(1, 136))
        if spec.output == "points":
            out = layers.Reshape((68, 2))(layers.Dense(136, name="fc")(x) + base)
        else:  # cascaded: two "stages"
            s1 = layers.Dense(136, name="fc1")(x) + base
            s2 = s1 + layers.Dense(136, name="fc2")(x)
            out = layers.Reshape((2, 68, 2))(layers.Concatenate()([s1, s2]))
    return keras.Model(image, out, name=f"tiny_{variant}")


def tiny_discriminator():
    import keras
    from keras import layers

    shape = keras.Input((68, 2), name="disc_input")
    x = layers.Flatten(name="disc_flatten")(shape)
    x = layers.Dense(16, use_bias=False, name="disc_fc1")(x)
    x = layers.BatchNormalization(name="disc_bn1")(x)
    x = layers.ReLU(name="disc_relu1")(x)
    return keras.Model(shape, layers.Dense(1, name="disc_logit")(x), name="tiny_disc")


def tiny_model(variant, **kwargs):
    from flzoo.models.landmark_model import LandmarkModel

    spec = VARIANTS[variant]
    stride = STRIDE if spec.output == "maps" else 1
    disc = tiny_discriminator() if spec.adversarial else None
    return LandmarkModel(tiny_network(variant), variant, SIZE, stride=stride, discriminator=disc, **kwargs)


def toy_batch(model, n=8, seed=0):
    """Random images, mean-shape points with jitter, and the model's map targets (flzoo.data.targets)."""
    from flzoo.data.targets import stack_targets, to_map

    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (n, SIZE, SIZE, 3)).astype(np.float32)
    points = (mean_shape()[None] + rng.normal(0, 0.7, (n, 68, 2))).astype(np.float32)
    spec = model.target_spec
    y = {"points": points}
    if spec.kind != "points":
        y["maps"] = stack_targets(spec, to_map(points, spec.stride), SIZE // spec.stride)
    return x, y
