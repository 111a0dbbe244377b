"""Cascaded shape regression: the Deep Alignment Network (DAN, Kowalski et al. 2017) as Hsu et al. used it.

Stage 1 regresses an offset from the mean shape out of the grey crop. Every later stage t:
  1. estimates the similarity transform T (least squares, closed form) taking the current shape to the mean shape,
  2. warps the grey crop with T into the mean-shape frame (bilinear, gather based),
  3. draws a landmark heatmap of T(shape) and a feature image from a Dense layer on the previous stage's FC
     features (S/2 x S/2, upsampled x2),
  4. regresses an offset in the mean-shape frame from [warped image, heatmap, feature image] and maps
     T(shape) + offset back with T^-1.
The network outputs every stage's shape, ``(B, stages, 68, 2)`` in input pixels; the last is the prediction.
Offsets are predicted in units of the input size. See docs/cascaded.md for the design and how it is trained.

Only ``keras.ops`` is used, so the model runs on TensorFlow, JAX and PyTorch.
"""

import json
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from flzoo.data.crop import unit_to_crop
from flzoo.landmarks import NUM_POINTS
from flzoo.models.layers import GreyInput

MEAN_SHAPE_FILE = Path(__file__).resolve().parent.parent / "assets" / "mean_shape_68.json"

# Paper (Hsu et al.'s DAN): two 3x3 conv-BN-ReLU per block, FC 256: 35,053,144 trainable parameters at
# 112 px with three stages (11,146,312 in the first sub-network). Lite: one narrow conv per block and FC 128.
# Measured on CPU, the full-resolution activations dominate training time (16 -> 8 channels halved it), while
# the warp and heatmap cost little; batch-1 inference is bound by per-op overhead, not by width.
SCALES = {
    "paper": {"widths": (64, 128, 256, 512), "convs_per_block": 2, "fc": 256, "dropout": 0.5},
    "lite": {"widths": (8, 16, 32, 64), "convs_per_block": 1, "fc": 128, "dropout": 0.5},
}


def default_mean_shape(input_size, path=MEAN_SHAPE_FILE):
    """The bundled 300-W training mean shape, ``(68, 2)`` float32 in the pixels of a ``input_size`` crop.

    The file stores the unit crop square (edges at 0 and 1); pixel centres sit at integer coordinates, so the
    square's edges fall at -0.5 and S - 0.5: ``p = u * S - 0.5``."""
    path = Path(path)
    try:
        points = np.asarray(json.loads(path.read_text())["points"], dtype=np.float64)
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path}: cannot read the mean shape ('points': 68 [x, y] pairs expected): {exc}") from exc
    if points.shape != (NUM_POINTS, 2):
        raise ValueError(f"{path}: 'points' has shape {points.shape}, expected ({NUM_POINTS}, 2)")
    return unit_to_crop(points, input_size).astype(np.float32)


def _check_mean_shape(mean_shape, where="mean_shape"):
    points = np.asarray(mean_shape, dtype=np.float32)
    if points.shape != (NUM_POINTS, 2) or not np.all(np.isfinite(points)):
        raise ValueError(f"{where}: expected a finite ({NUM_POINTS}, 2) array of (x, y) input pixels, "
                         f"got shape {points.shape}")
    return points


def similarity_to_mean(shapes, mean_shape):
    """Closed-form least-squares similarity ``M`` (B, 2, 3) with ``M @ [s; 1] ~= mean`` for each shape.

    With centred points s and m: a = sum(s.m) / sum|s|^2, b = sum(s x m) / sum|s|^2, A = [[a, -b], [b, a]],
    t = mean(m) - A mean(s)."""
    mean = ops.convert_to_tensor(mean_shape, dtype=shapes.dtype)
    s_centre = ops.mean(shapes, axis=1, keepdims=True)
    m_centre = ops.mean(mean, axis=0, keepdims=True)
    s = shapes - s_centre
    m = mean[None] - m_centre[None]
    norm = ops.sum(ops.square(s), axis=(1, 2)) + 1e-6
    a = ops.sum(s[..., 0] * m[..., 0] + s[..., 1] * m[..., 1], axis=1) / norm
    b = ops.sum(s[..., 0] * m[..., 1] - s[..., 1] * m[..., 0], axis=1) / norm
    cx, cy = s_centre[:, 0, 0], s_centre[:, 0, 1]
    tx = m_centre[0, 0] - (a * cx - b * cy)
    ty = m_centre[0, 1] - (b * cx + a * cy)
    row0 = ops.stack([a, -b, tx], axis=-1)
    row1 = ops.stack([b, a, ty], axis=-1)
    return ops.stack([row0, row1], axis=1)


def invert_affine(matrix):
    """Inverses of a batch of affine matrices ``(B, 2, 3)`` (similarities included)."""
    a, b, c = matrix[:, 0, 0], matrix[:, 0, 1], matrix[:, 0, 2]
    d, e, f = matrix[:, 1, 0], matrix[:, 1, 1], matrix[:, 1, 2]
    det = a * e - b * d
    ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
    row0 = ops.stack([ia, ib, -(ia * c + ib * f)], axis=-1)
    row1 = ops.stack([id_, ie, -(id_ * c + ie * f)], axis=-1)
    return ops.stack([row0, row1], axis=1)


def apply_affine(matrix, points):
    """``(B, 2, 3)`` matrices applied to ``(B, N, 2)`` points."""
    return ops.matmul(points, ops.transpose(matrix[:, :, :2], (0, 2, 1))) + matrix[:, None, :, 2]


def bilinear_warp(image, matrix, size=None):
    """``cv2.warpAffine(image, M, (w, h), INTER_LINEAR, BORDER_CONSTANT 0)`` for a batch, in ``keras.ops``.

    ``matrix`` maps source to output pixels (pixel centres at integer coordinates). Each output pixel samples
    the source at M^-1 p from its four neighbours; neighbours outside the image count as 0, as in OpenCV.
    Gather based, so it is differentiable with respect to ``image`` (and to the sampling positions)."""
    shape = ops.shape(image)
    batch, height, width, channels = shape[0], image.shape[1], image.shape[2], image.shape[3]
    out_h, out_w = size if size is not None else (height, width)
    dtype = image.dtype
    ys, xs = ops.meshgrid(ops.arange(out_h, dtype=dtype), ops.arange(out_w, dtype=dtype), indexing="ij")
    grid = ops.reshape(ops.stack([xs, ys], axis=-1), (1, out_h * out_w, 2))
    src = apply_affine(invert_affine(matrix), grid)  # (B, N, 2): where each output pixel samples
    x, y = src[..., 0], src[..., 1]
    x0f, y0f = ops.floor(x), ops.floor(y)
    wx, wy = x - x0f, y - y0f
    x0, y0 = ops.cast(x0f, "int32"), ops.cast(y0f, "int32")
    flat = ops.reshape(image, (-1, channels))
    base = ops.arange(batch, dtype="int32")[:, None] * (height * width)
    out = 0.0
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        xi, yi = x0 + dx, y0 + dy
        inside = (xi >= 0) & (xi <= width - 1) & (yi >= 0) & (yi <= height - 1)
        weight = (wx if dx else 1.0 - wx) * (wy if dy else 1.0 - wy) * ops.cast(inside, dtype)
        index = base + ops.clip(yi, 0, height - 1) * width + ops.clip(xi, 0, width - 1)
        values = ops.take(flat, ops.reshape(index, (-1,)), axis=0)
        out = out + ops.reshape(values, (batch, out_h * out_w, channels)) * weight[..., None]
    return ops.reshape(out, (batch, out_h, out_w, channels))


def landmark_heatmap(points, size):
    """DAN's landmark image: H(p) = 1 / (1 + min_i ||p - s_i||) on a ``size x size`` grid, ``(B, S, S, 1)``."""
    coords = ops.arange(size, dtype=points.dtype)
    # Squared distances broadcast as rows (B, S, 1, 68) + columns (B, 1, S, 68): exact and cheaper than a
    # matmul expansion; the largest tensor is (B, S, S, 68).
    dx2 = ops.square(coords[None, None, :, None] - points[:, None, None, :, 0])
    dy2 = ops.square(coords[None, :, None, None] - points[:, None, None, :, 1])
    nearest = ops.sqrt(ops.min(dx2 + dy2, axis=-1))
    return (1.0 / (1.0 + nearest))[..., None]


# Custom layers: registered so a serialised network rebuilds on any backend.
register = keras.saving.register_keras_serializable(package="flzoo")


@register
class DANInitialShape(keras.layers.Layer):
    """First-stage shape: mean shape + offset, the offset ``(B, 136)`` in units of the input size."""
    def __init__(self, mean_shape, input_size, **kwargs):
        super().__init__(**kwargs)
        self.mean_shape = _check_mean_shape(mean_shape, f"{self.name}.mean_shape")
        self.input_size = int(input_size)

    def call(self, offsets):
        mean = ops.convert_to_tensor(self.mean_shape, dtype=self.compute_dtype)
        return mean[None] + ops.reshape(offsets, (-1, NUM_POINTS, 2)) * float(self.input_size)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], NUM_POINTS, 2)

    def get_config(self):
        return {**super().get_config(), "mean_shape": self.mean_shape.tolist(), "input_size": self.input_size}


@register
class DANOffset(keras.layers.Layer):
    """``[shape (B, 68, 2), offset (B, 136)]`` -> shape + offset * input_size."""
    def __init__(self, input_size, **kwargs):
        super().__init__(**kwargs)
        self.input_size = int(input_size)

    def call(self, inputs):
        shape, offsets = inputs
        return shape + ops.reshape(offsets, (-1, NUM_POINTS, 2)) * float(self.input_size)

    def compute_output_shape(self, input_shapes):
        return tuple(input_shapes[0])

    def get_config(self):
        return {**super().get_config(), "input_size": self.input_size}


@register
class DANSimilarity(keras.layers.Layer):
    """Shape ``(B, 68, 2)`` -> similarity ``(B, 2, 3)`` taking it to the mean shape (least squares).

    The transform is a constant for back-propagation: each stage is supervised by its own loss, and the
    sampling geometry is not something earlier stages should be pushed by (DAN trained stage by stage)."""
    def __init__(self, mean_shape, **kwargs):
        super().__init__(**kwargs)
        self.mean_shape = _check_mean_shape(mean_shape, f"{self.name}.mean_shape")

    def call(self, shapes):
        shapes = ops.stop_gradient(ops.cast(shapes, self.compute_dtype))
        return similarity_to_mean(shapes, self.mean_shape)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2, 3)

    def get_config(self):
        return {**super().get_config(), "mean_shape": self.mean_shape.tolist()}


@register
class DANTransformPoints(keras.layers.Layer):
    """``[points (B, N, 2), similarity (B, 2, 3)]`` -> points mapped by it (or by its inverse)."""
    def __init__(self, inverse=False, **kwargs):
        super().__init__(**kwargs)
        self.inverse = bool(inverse)

    def call(self, inputs):
        points, matrix = inputs
        return apply_affine(invert_affine(matrix) if self.inverse else matrix, points)

    def compute_output_shape(self, input_shapes):
        return tuple(input_shapes[0])

    def get_config(self):
        return {**super().get_config(), "inverse": self.inverse}


@register
class DANWarp(keras.layers.Layer):
    """``[image (B, H, W, C), matrix (B, 2, 3)]`` -> image warped by the matrix (bilinear, zero border)."""
    def call(self, inputs):
        image, matrix = inputs
        return bilinear_warp(ops.cast(image, self.compute_dtype), ops.cast(matrix, self.compute_dtype))

    def compute_output_shape(self, input_shapes):
        return tuple(input_shapes[0])


@register
class DANHeatmap(keras.layers.Layer):
    """Shape ``(B, 68, 2)`` in the mean-shape frame -> landmark image ``(B, S, S, 1)`` (no gradient)."""
    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, points):
        return landmark_heatmap(ops.stop_gradient(ops.cast(points, self.compute_dtype)), self.size)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, 1)

    def get_config(self):
        return {**super().get_config(), "size": self.size}


def _sub_network(x, prefix, spec):
    """One DAN stage's regressor: conv blocks (conv-BN-ReLU, max pool), FC-BN-ReLU, FC 136 offsets.

    Returns ``(fc_features, offsets)``; the features also feed the next stage's feature image."""
    for block, width in enumerate(spec["widths"], start=1):
        for k in range(1, spec["convs_per_block"] + 1):
            x = layers.Conv2D(width, 3, padding="same", name=f"{prefix}_conv{block}_{k}")(x)
            x = layers.BatchNormalization(name=f"{prefix}_bn{block}_{k}")(x)
            x = layers.ReLU(name=f"{prefix}_relu{block}_{k}")(x)
        x = layers.MaxPooling2D(2, name=f"{prefix}_pool{block}")(x)
    x = layers.Flatten(name=f"{prefix}_flatten")(x)
    x = layers.Dropout(spec["dropout"], name=f"{prefix}_dropout")(x)
    x = layers.Dense(spec["fc"], name=f"{prefix}_fc1")(x)
    x = layers.BatchNormalization(name=f"{prefix}_fc1_bn")(x)
    features = layers.ReLU(name=f"{prefix}_fc1_relu")(x)
    # Small initial offsets: the cascade starts near the mean shape, yet gradients reach every layer at step 0.
    offsets = layers.Dense(2 * NUM_POINTS, kernel_initializer=keras.initializers.RandomNormal(stddev=1e-3),
                           name=f"{prefix}_offsets")(features)
    return features, offsets


def cascaded_network(input_size=112, mean_shape=None, stages=3, scale="paper"):
    """The DAN cascade as a functional ``keras.Model``: ``(B, S, S, 3)`` RGB 0..255 -> ``(B, stages, 68, 2)``.

    ``mean_shape``: ``(68, 2)`` in input pixels; default: the bundled 300-W training mean shape scaled to
    ``input_size``. ``scale``: ``"paper"`` (Hsu et al.: 35,053,144 trainable parameters at 112 px, 3 stages)
    or ``"lite"`` (narrow, for CPU training)."""
    if scale not in SCALES:
        raise ValueError(f"cascaded_network: scale={scale!r}, expected one of {sorted(SCALES)}")
    if isinstance(stages, bool) or not isinstance(stages, (int, np.integer)) or stages < 1:
        raise ValueError(f"cascaded_network: stages={stages!r}, expected an integer >= 1")
    if isinstance(input_size, bool) or not isinstance(input_size, (int, np.integer)) \
            or input_size < 16 or input_size % 16:
        raise ValueError(f"cascaded_network: input_size={input_size!r}, expected a multiple of 16 "
                         "(four 2x2 pools; the feature image is input_size / 2, upsampled x2)")
    input_size, stages = int(input_size), int(stages)
    mean_shape = default_mean_shape(input_size) if mean_shape is None else _check_mean_shape(mean_shape)
    spec = SCALES[scale]

    image = keras.Input((input_size, input_size, 3), name="image")
    grey = GreyInput(name="grey")(image)
    features, offsets = _sub_network(grey, "s1", spec)
    shape = DANInitialShape(mean_shape, input_size, name="s1_shape")(offsets)
    shapes = [shape]
    half = input_size // 2
    for t in range(2, stages + 1):
        p = f"s{t}"
        matrix = DANSimilarity(mean_shape, name=f"{p}_transform")(shape)
        warped = DANWarp(name=f"{p}_warp")([grey, matrix])
        aligned = DANTransformPoints(name=f"{p}_to_mean")([shape, matrix])
        heatmap = DANHeatmap(input_size, name=f"{p}_heatmap")(aligned)
        feature = layers.Dense(half * half, activation="relu", name=f"{p}_feature_dense")(features)
        feature = layers.Reshape((half, half, 1), name=f"{p}_feature_reshape")(feature)
        feature = layers.UpSampling2D(2, name=f"{p}_feature_image")(feature)
        x = layers.Concatenate(name=f"{p}_input")([warped, heatmap, feature])
        features, offsets = _sub_network(x, p, spec)
        moved = DANOffset(input_size, name=f"{p}_offset")([aligned, offsets])
        shape = DANTransformPoints(inverse=True, name=f"{p}_shape")([moved, matrix])
        shapes.append(shape)
    stacked = [layers.Reshape((1, NUM_POINTS, 2), name=f"s{i}_expand")(s) for i, s in enumerate(shapes, 1)]
    output = stacked[0] if stages == 1 else layers.Concatenate(axis=1, name="stages")(stacked)
    return keras.Model(image, output, name=f"dan_{scale}_{stages}stage")
