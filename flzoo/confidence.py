"""Per-point and per-face confidence, and how well a face confidence predicts failure.

Per point (``point_confidence``, 68 values in [0, 1]):
- map variants: the probability mass of the landmark's score map in the 3 x 3 cells around its peak (the
  ``(2 * WINDOW_RADIUS + 1)^2`` window), computed inside the network graph from the same output the points are
  decoded from (no second pass). For ``distribution`` the map is a spatial softmax (sums to 1); for the PWC
  family it is the per-pixel class probability of that landmark (a sharp, sure peak puts ~1 in the window);
  for ``heatmap_reg`` the regressed Gaussian peak height (target 1). Clipped to [0, 1].
- point variants (``direct``, ``cascaded``) have no maps: the proxy is flip consistency, ``exp(-d / FLIP_TAU)``
  with ``d`` the distance between the point predicted on the crop and on its mirror image (mapped back and
  relabelled), over the predicted outer-eye-corner distance. It costs a second network pass.

Per face (``confidence``, in [0, 1]): ``face_confidence`` below (mean point confidence x flip consistency; the
mirrored pass is made for every face); the choice was made by the AUROC of failure prediction on the training
split's validation faces (``tools/confidence_study.py``, figures in docs/confidence.md).
"""

import numpy as np

from flzoo.landmarks import NUM_POINTS, OUTER_EYE_CORNERS
from flzoo.metrics import THRESHOLD

WINDOW_RADIUS = 1  # map cells around the peak whose mass is the point confidence
# Flip disagreement (outer-eye-corner units) at which the flip confidence is 1/e: NME 0.08 is the failure line,
# and a face whose two predictions disagree by that much is rarely right.
FLIP_TAU = 0.08


# ---- inside the graph (keras.ops) --------------------------------------------------------------------------


def map_point_confidence(scores, variant):
    """``(B, h, w, 68)`` landmark score maps (``decoding.landmark_scores``) -> ``(B, 68)`` confidence in [0, 1]."""
    from keras import ops

    from flzoo.models.decoding import _flat, _gather, _peak

    from flzoo.models.variants import get_variant

    flat, h, w = _flat(ops.cast(scores, "float32"))
    if get_variant(variant).scores == "regressed":  # regressed Gaussians: the peak height (target 1)
        return ops.clip(ops.max(flat, axis=-1), 0.0, 1.0)
    _, ix, iy = _peak(flat, w)
    r = WINDOW_RADIUS
    offsets = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]
    dy = ops.convert_to_tensor([o[0] for o in offsets], dtype=ix.dtype)[None, None, :]
    dx = ops.convert_to_tensor([o[1] for o in offsets], dtype=ix.dtype)[None, None, :]
    cx, cy = ops.expand_dims(ix, -1) + dx, ops.expand_dims(iy, -1) + dy
    inside = ops.logical_and(ops.logical_and(cx >= 0, cx < w), ops.logical_and(cy >= 0, cy < h))
    cells = ops.clip(cy, 0, h - 1) * w + ops.clip(cx, 0, w - 1)
    mass = ops.sum(ops.where(inside, _gather(flat, cells), 0.0), axis=-1)
    return ops.clip(mass, 0.0, 1.0)


def has_maps(model):
    """Whether the model's points come from score maps it can score in-graph (any other model, e.g. a
    stand-in with only ``predict_points``, is scored by flip consistency)."""
    from flzoo.models.variants import VARIANTS, get_variant

    variant = getattr(model, "variant", None)
    maps = variant in VARIANTS and get_variant(variant).output == "maps"
    return maps and (hasattr(model, "predict_scored") or hasattr(model, "network"))


def scored_model(model, method=None):
    """A functional ``keras.Model`` crops ``(B, S, S, 3)`` -> ``(B, 68, 3)``: x, y (input pixels, exactly the
    points of ``model.inference_model``) and the point confidence, from one network pass. Map variants only."""
    import keras

    from flzoo.models.decoding import decode_output, landmark_scores

    if not has_maps(model):
        raise ValueError(f"variant {model.variant!r} has no output maps: its confidence comes from flip consistency")
    method = method or model.decoding
    cache = model.__dict__.setdefault("_flzoo_scored", {})
    if method not in cache:
        variant, stride = model.variant, model.stride

        class ScoredDecoder(keras.layers.Layer):
            def call(self, output):
                from keras import ops

                points = decode_output(output, variant, stride, method)
                conf = map_point_confidence(landmark_scores(output, variant), variant)
                return ops.concatenate([points, ops.expand_dims(conf, -1)], axis=-1)

            def compute_output_shape(self, input_shape):
                return (input_shape[0], NUM_POINTS, 3)

        image = keras.Input((model.input_size, model.input_size, 3), name="image")
        out = ScoredDecoder(name="scored_points")(model.network(image))
        cache[method] = keras.Model(image, out, name=f"{model.name}_scored")
    return cache[method]


def predict_scored(model, crops, batch_size=32):
    """``(points (B, 68, 2), point confidence (B, 68))`` for crops, in one pass: the exported runtime's scored
    graph when the model runs in one (``flzoo.export.ExportedModel``), else Keras."""
    if hasattr(model, "predict_scored"):
        return model.predict_scored(crops, batch_size=batch_size)
    graph = scored_model(model)
    crops = np.asarray(crops, dtype=np.float32)
    out = [np.asarray(graph.predict_on_batch(crops[i:i + batch_size]), np.float32)
           for i in range(0, len(crops), batch_size)]
    out = np.concatenate(out) if out else np.zeros((0, NUM_POINTS, 3), np.float32)
    return out[..., :2], out[..., 2]


# ---- outside the graph (numpy) -----------------------------------------------------------------------------


def eye_distance(points):
    """``(..., 68, 2)`` -> distance between the outer eye corners (points 36, 45), at least 1e-6."""
    p = np.asarray(points, np.float64)
    return np.maximum(np.linalg.norm(p[..., OUTER_EYE_CORNERS[0], :] - p[..., OUTER_EYE_CORNERS[1], :], axis=-1),
                      1e-6)


def flip_disagreement(points, mirrored):
    """Per point distance between two predictions of the same faces (``(N, 68, 2)``, same frame), in units of
    the outer-eye-corner distance of their mean: ``(N, 68)``."""
    points, mirrored = np.asarray(points, np.float64), np.asarray(mirrored, np.float64)
    return np.linalg.norm(points - mirrored, axis=-1) / eye_distance((points + mirrored) / 2)[:, None]


def flip_confidence(disagreement):
    """Flip disagreement (eye-corner units) -> confidence in (0, 1]."""
    return np.exp(-np.asarray(disagreement, np.float64) / FLIP_TAU)


class ShapeJudge:
    """The +disc models' shape discriminator D, in numpy (inference mode: batch-norm moving statistics):
    ``judge(points_in_crop_pixels (N, 68, 2)) -> D in (0, 1)``, the probability that the shape is a real face
    shape, in the frame it was trained in (``flzoo.data.crop.crop_to_centred``: the crop square -> [-0.5, 0.5]^2)."""

    LAYERS = ("disc_fc1", "disc_fc2")

    def __init__(self, discriminator, input_size):
        def weights(name):
            return [np.asarray(w, np.float64) for w in discriminator.get_layer(name).get_weights()]

        self.input_size = float(input_size)
        self.hidden = []
        for name in self.LAYERS:
            kernel, bias = weights(name)
            bn = discriminator.get_layer(f"{name}_bn")
            gamma, beta, mean, var = weights(f"{name}_bn")
            k = gamma / np.sqrt(var + bn.epsilon)  # fold the batch norm into the dense layer
            self.hidden.append((kernel * k, (bias - mean) * k + beta))
        self.out_kernel, self.out_bias = weights("disc_logit")

    def logit(self, points):
        from flzoo.data.crop import crop_to_centred

        x = crop_to_centred(np.asarray(points, np.float64), self.input_size).reshape(len(points), -1)
        for kernel, bias in self.hidden:
            x = np.maximum(x @ kernel + bias, 0.0)
        return (x @ self.out_kernel + self.out_bias)[:, 0]

    def __call__(self, points):
        return 1.0 / (1.0 + np.exp(-self.logit(points)))


def shape_judge(model):
    """A ``ShapeJudge`` for a model with a discriminator (``pwc_disc``, ``hybrid_disc``), else None."""
    disc = getattr(model, "discriminator", None)
    return None if disc is None else ShapeJudge(disc, model.input_size)


def face_confidence(point_conf, disagreement, maps=True):
    """One score in [0, 1] per face from its per-point confidences ``(N, 68)`` and flip disagreement ``(N, 68)``.

    Map variants: the geometric mean of the mean point confidence and the flip confidence of the mean flip
    disagreement; point variants (whose point confidences are flip confidences already): their mean. Chosen by
    AUROC on the validation faces (docs/confidence.md): the flip term adds 0.00-0.04 over the
    mean alone for 5 of 6 map models; the discriminator's D ranks failures ABOVE successes and is not used."""
    mean = np.mean(np.asarray(point_conf, np.float64), axis=-1)
    if not maps:
        return mean
    flip = flip_confidence(np.mean(np.asarray(disagreement, np.float64), axis=-1))
    return np.sqrt(mean * flip)


# ---- evaluation ------------------------------------------------------------------------------------------


def auroc(confidence, failed):
    """Area under the ROC curve of ``confidence`` ranking successes above failures: the probability that a
    random success scores higher than a random failure (ties count half). NaN when either class is empty."""
    conf = np.asarray(confidence, np.float64)
    failed = np.asarray(failed, bool)
    good, bad = conf[~failed], conf[failed]
    if good.size == 0 or bad.size == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([bad, good]))  # Mann-Whitney U of the successes
    u = ranks[bad.size:].sum() - good.size * (good.size + 1) / 2
    return float(u / (good.size * bad.size))


def confident_nme(nmes, confidence, keep=0.9):
    """Mean NME of the ``keep`` fraction of faces with the highest confidence (at least one face)."""
    nmes = np.asarray(nmes, np.float64)
    if nmes.size == 0:
        return float("nan")
    order = np.argsort(-np.asarray(confidence, np.float64), kind="stable")
    n = max(1, int(round(keep * nmes.size)))
    return float(nmes[order[:n]].mean())


def confidence_summary(nmes, confidence, threshold=THRESHOLD):
    """results.json fields: AUROC of the face confidence for failure (NME > ``threshold``) and the NME of the
    most confident 90% of faces. Faces without a confidence (or NME) are left out."""
    pairs = [(e, c) for e, c in zip(nmes, confidence) if e is not None and c is not None and np.isfinite(e)]
    e = np.array([p[0] for p in pairs], np.float64)
    c = np.array([p[1] for p in pairs], np.float64)
    return {"confidence_auroc": auroc(c, e > threshold), "nme_confident90": confident_nme(e, c)}


__all__ = ["map_point_confidence", "scored_model", "predict_scored", "has_maps", "flip_disagreement",
           "flip_confidence", "ShapeJudge", "shape_judge", "face_confidence", "auroc", "confident_nme",
           "confidence_summary", "WINDOW_RADIUS", "FLIP_TAU"]
