"""Custom Keras layers used inside flzoo networks.

Each is registered under the ``flzoo`` package so that a serialised network (``get_config`` / ``to_json``)
rebuilds with ``keras.saving.deserialize_keras_object`` on any backend. Only ``keras.ops`` is used.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="flzoo")
class GreyInput(keras.layers.Layer):
    """RGB ``(B, H, W, 3)`` in [0, 255] -> one grey channel ``(B, H, W, 1)`` = mean(R, G, B) * scale + offset.

    The paper's models take the channel mean as grey; doing it inside the network means exported graphs need
    no pre-processing besides the crop."""

    def __init__(self, scale=1.0 / 255.0, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.offset = float(offset)

    def call(self, inputs):
        grey = ops.mean(ops.cast(inputs, self.compute_dtype), axis=-1, keepdims=True)
        return grey * self.scale + self.offset

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (1,)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


@keras.saving.register_keras_serializable(package="flzoo")
class PixelCoordinates(keras.layers.Layer):
    """Centred normalised points -> input pixels (``flzoo.data.crop.centred_to_crop``).

    Regression heads predict points centred on the crop and in units of its side, which keeps the last
    Dense layer's outputs near zero at initialisation; pixel centres sit at integer coordinates, so the crop's
    centre is ``(S - 1) / 2``."""

    def __init__(self, input_size, **kwargs):
        super().__init__(**kwargs)
        self.input_size = int(input_size)

    def call(self, inputs):
        from flzoo.data.crop import centred_to_crop

        return centred_to_crop(ops.cast(inputs, self.compute_dtype), float(self.input_size))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "input_size": self.input_size}


@keras.saving.register_keras_serializable(package="flzoo")
class ImageNorm(keras.layers.Layer):
    """RGB ``(B, H, W, 3)`` in [0, 255] -> ``(x / 255 - mean) / std`` per channel, the preprocessing of an
    ImageNet-pretrained backbone, inside the network (exported graphs need nothing besides the crop)."""

    def __init__(self, mean, std, **kwargs):
        super().__init__(**kwargs)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype) / 255.0
        mean = ops.convert_to_tensor(self.mean, dtype=self.compute_dtype)
        std = ops.convert_to_tensor(self.std, dtype=self.compute_dtype)
        return (x - mean) / std

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "mean": list(self.mean), "std": list(self.std)}
