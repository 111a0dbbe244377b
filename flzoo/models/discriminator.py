"""The paper's shape discriminator: (B, 68, 2) normalised shape -> (B, 1) logit.

flatten (136) -> Dense 128 -> BN -> ReLU -> Dense 128 -> BN -> ReLU -> Dense 1: 34,689 trainable parameters.
Every layer is named ``disc_*``, so its variable paths (the keys of a model file) are fixed and never collide
with the detector's; the train step tells the two apart by object (``LandmarkModel.compile``). Which
normalised frame the shapes are given in is the losses' business (``flzoo/losses.py``).
"""

import keras
from keras import layers

from flzoo.landmarks import NUM_POINTS


def discriminator(hidden=(128, 128), name="discriminator"):
    shape = keras.Input((NUM_POINTS, 2), name="disc_input")
    x = layers.Flatten(name="disc_flatten")(shape)
    for i, units in enumerate(hidden, start=1):
        x = layers.Dense(units, name=f"disc_fc{i}")(x)
        x = layers.BatchNormalization(name=f"disc_fc{i}_bn")(x)
        x = layers.ReLU(name=f"disc_fc{i}_relu")(x)
    logit = layers.Dense(1, name="disc_logit")(x)
    return keras.Model(shape, logit, name=name)
