"""Output map <-> crop frame, and decoding landmark maps to points (all ``keras.ops``, export-friendly).

Frames: a crop is ``S x S`` input pixels; an output map at stride ``s`` has ``S / s`` cells per side
(``flzoo.data.crop.crop_to_map`` / ``map_to_crop``). Every
decoder here takes landmark score maps ``(B, h, w, K)`` (non-negative, peaked: probabilities or heatmaps) and
returns ``(B, K, 2)`` (x, y) in INPUT pixels.

- ``decode_argmax``: the paper's decoding, the centre of the highest cell (whole map cells).
- ``decode_subpixel`` (default): argmax, then per axis the vertex of the parabola through the log-scores of the
  peak and its two neighbours. Exact for sampled Gaussians (their log is a quadratic); offsets are clipped to
  half a cell, and a peak on the border keeps the cell centre on that axis.
- ``soft_argmax``: differentiable expectation of the coordinates under the normalised map, either over the
  whole map or (``radius=r``) over the ``(2r+1)^2`` window around the argmax cell. The window variant keeps the
  estimate local (the far-away probability mass of an untrained map does not drag it to the centre) and is what
  the hybrid loss and the adversarial term differentiate through.

``landmark_scores`` turns a network output into those score maps as its variant's record says
(``variants.Variant.scores``), ``decode_output`` chains both.
"""

import keras
from keras import ops

from flzoo.data.crop import map_to_crop
from flzoo.landmarks import NUM_POINTS
from flzoo.models.variants import VARIANTS, get_variant

METHODS = ("argmax", "subpixel", "soft_argmax")
# Window radius (map cells) of the local soft-argmax used for the hybrid / adversarial point estimate.
SOFT_RADIUS = 2


def _flat(maps):
    """(B, h, w, K) -> (B, K, h*w) with static h, w."""
    h, w, k = maps.shape[1], maps.shape[2], maps.shape[3]
    if h is None or w is None or k is None:
        raise ValueError(f"decoding needs static map sizes (B, h, w, K); got shape {tuple(maps.shape)}")
    return ops.reshape(ops.transpose(maps, (0, 3, 1, 2)), (-1, k, h * w)), h, w


def _gather(flat, index):
    """flat (B, K, N), index (B, K, M) int -> (B, K, M)."""
    return ops.take_along_axis(flat, index, axis=-1)


def _peak(flat, w):
    # top_k rather than argmax: keras' TF argmax adds a Bitcast (a -0.0 fix) that ONNX cannot express.
    index = ops.cast(ops.top_k(flat, 1)[1][..., 0], "int32")  # (B, K); ties -> lowest index, as argmax
    iy = ops.floor_divide(index, w)
    ix = index - iy * w
    return index, ix, iy


def _to_points(x, y, stride):
    return map_to_crop(ops.stack([x, y], axis=-1), stride)


def decode_argmax(maps, stride=1):
    """Centre of the highest cell of each channel: ``(B, h, w, K)`` -> ``(B, K, 2)`` input pixels."""
    flat, _, w = _flat(maps)
    _, ix, iy = _peak(flat, w)
    return _to_points(ops.cast(ix, "float32"), ops.cast(iy, "float32"), stride)


def _parabola_offset(left, centre, right, inside):
    """Vertex offset in (-0.5, 0.5) of the parabola through three log-scores; 0 where not strictly concave."""
    curvature = left - 2.0 * centre + right
    ok = ops.logical_and(inside, curvature < -1e-6)
    offset = 0.5 * (left - right) / ops.where(ok, curvature, -1.0)
    return ops.where(ok, ops.clip(offset, -0.5, 0.5), 0.0)


def decode_subpixel(maps, stride=1, eps=1e-8):
    """Argmax refined by a log-parabola fit per axis: ``(B, h, w, K)`` -> ``(B, K, 2)`` input pixels."""
    flat, h, w = _flat(maps)
    index, ix, iy = _peak(flat, w)
    in_x = ops.logical_and(ix > 0, ix < w - 1)
    in_y = ops.logical_and(iy > 0, iy < h - 1)
    # Neighbour indices; clamped ones are masked out by in_x / in_y.
    neighbours = ops.stack([
        index,
        ops.where(in_x, index - 1, index), ops.where(in_x, index + 1, index),
        ops.where(in_y, index - w, index), ops.where(in_y, index + w, index),
    ], axis=-1)
    values = ops.log(ops.maximum(ops.cast(_gather(flat, neighbours), "float32"), eps))
    c, xl, xr, yu, yd = (values[..., i] for i in range(5))
    x = ops.cast(ix, "float32") + _parabola_offset(xl, c, xr, in_x)
    y = ops.cast(iy, "float32") + _parabola_offset(yu, c, yd, in_y)
    return _to_points(x, y, stride)


def soft_argmax(maps, stride=1, radius=None, eps=1e-12):
    """Differentiable expected position: ``(B, h, w, K)`` -> ``(B, K, 2)`` input pixels.

    ``radius=None`` takes the expectation over the whole map; ``radius=r`` only over the ``(2r+1)^2`` cells
    around the argmax (cells outside the map are left out). Negative scores count as zero."""
    maps = ops.relu(ops.cast(maps, "float32"))
    if radius is None:
        h, w = maps.shape[1], maps.shape[2]
        total = ops.sum(maps, axis=(1, 2)) + eps  # (B, K)
        xs = ops.cast(ops.arange(w), "float32")[None, :, None]
        ys = ops.cast(ops.arange(h), "float32")[None, :, None]
        x = ops.sum(ops.sum(maps, axis=1) * xs, axis=1) / total
        y = ops.sum(ops.sum(maps, axis=2) * ys, axis=1) / total
        return _to_points(x, y, stride)
    radius = int(radius)
    if radius < 0:
        raise ValueError(f"soft_argmax radius={radius}: expected None or a non-negative integer")
    flat, h, w = _flat(maps)
    index, ix, iy = _peak(flat, w)
    offsets = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]
    dy = ops.convert_to_tensor([o[0] for o in offsets], dtype=ix.dtype)[None, None, :]
    dx = ops.convert_to_tensor([o[1] for o in offsets], dtype=ix.dtype)[None, None, :]
    cx = ops.expand_dims(ix, -1) + dx  # (B, K, n) window cell coordinates
    cy = ops.expand_dims(iy, -1) + dy
    inside = ops.logical_and(ops.logical_and(cx >= 0, cx < w), ops.logical_and(cy >= 0, cy < h))
    cells = ops.clip(cy, 0, h - 1) * w + ops.clip(cx, 0, w - 1)
    weights = ops.where(inside, _gather(flat, cells), 0.0)
    total = ops.sum(weights, axis=-1) + eps
    x = ops.sum(weights * ops.cast(cx, "float32"), axis=-1) / total
    y = ops.sum(weights * ops.cast(cy, "float32"), axis=-1) / total
    return _to_points(x, y, stride)


def spatial_softmax(logits):
    """Softmax over the pixels of each channel: ``(B, h, w, K)`` logits -> maps summing to 1 per channel."""
    flat, h, w = _flat(ops.cast(logits, "float32"))
    probs = ops.softmax(flat, axis=-1)
    k = flat.shape[1]
    return ops.transpose(ops.reshape(probs, (-1, k, h, w)), (0, 2, 3, 1))


def class_softmax(logits):
    """Per-pixel class logits over background (channel 0) + 68 landmarks -> the 68 landmark probabilities."""
    return ops.softmax(ops.cast(logits, "float32"), axis=-1)[..., 1:]


def regressed(output):
    """Regressed heatmaps after the background channel 0."""
    return ops.cast(output[..., 1:], "float32")


SCORES = {"spatial_softmax": spatial_softmax, "regressed": regressed, "class_softmax": class_softmax}


def landmark_scores(output, variant):
    """Network output of a map variant -> ``(B, h, w, 68)`` landmark score maps (``SCORES[spec.scores]``)."""
    scores = get_variant(variant).scores
    if scores is None:
        with_maps = [name for name, v in VARIANTS.items() if v.scores]
        raise ValueError(f"variant={variant!r} has no output maps: expected one of {', '.join(with_maps)}")
    return SCORES[scores](output)


def decode_maps(maps, stride=1, method="subpixel"):
    """Score maps -> points with the named method (``argmax``, ``subpixel`` or ``soft_argmax``)."""
    if method == "argmax":
        return decode_argmax(maps, stride)
    if method == "subpixel":
        return decode_subpixel(maps, stride)
    if method == "soft_argmax":
        return soft_argmax(maps, stride, radius=SOFT_RADIUS)
    raise ValueError(f"decoding={method!r}: expected one of {', '.join(METHODS)}")


def decode_output(output, variant, stride=1, method="subpixel"):
    """Network output of any variant -> ``(B, 68, 2)`` input pixels."""
    kind = get_variant(variant).output
    if kind == "points":
        return ops.cast(output, "float32")
    if kind == "stages":
        return ops.cast(output[:, -1], "float32")  # the last stage's shape
    return decode_maps(landmark_scores(output, variant), stride, method)


def soft_points(output, variant, stride=1):
    """Differentiable point estimate of a map variant (local soft-argmax, radius ``SOFT_RADIUS``)."""
    return soft_argmax(landmark_scores(output, variant), stride, radius=SOFT_RADIUS)


@keras.saving.register_keras_serializable(package="flzoo")
class PointDecoder(keras.layers.Layer):
    """Network output -> ``(B, 68, 2)`` input pixels, as a layer (for inference / export models)."""

    def __init__(self, variant, stride=1, method="subpixel", **kwargs):
        super().__init__(**kwargs)
        if method not in METHODS:
            raise ValueError(f"decoding={method!r}: expected one of {', '.join(METHODS)}")
        self.variant, self.stride, self.method = variant, int(stride), method

    def call(self, output):
        return decode_output(output, self.variant, self.stride, self.method)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], NUM_POINTS, 2)

    def get_config(self):
        return {**super().get_config(), "variant": self.variant, "stride": self.stride, "method": self.method}
