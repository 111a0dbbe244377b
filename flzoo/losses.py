"""Training losses of the paper's variants, in ``keras.ops`` (TensorFlow, JAX and PyTorch alike).

Shapes: points ``(B, 68, 2)`` in input pixels; maps / logits ``(B, h, w, C)``; PWC labels ``(B, h, w)`` int with
class ``l + 1`` at landmark ``l`` and 0 for background. See docs/losses.md for the choices and their reasons.
"""

from keras import ops

from flzoo.data.crop import crop_to_centred
from flzoo.models.decoding import soft_points


def point_loss(pred, true, mask=None, eps=1e-8):
    """Mean Euclidean distance between points (not squared; the paper's code), in input pixels.

    ``mask`` ``(B, 68)`` (1 = counts) leaves points out; ``eps`` keeps the gradient finite at distance 0."""
    true = ops.cast(true, pred.dtype)
    dist = ops.sqrt(ops.sum(ops.square(pred - true), axis=-1) + eps)
    if mask is None:
        return ops.mean(dist)
    mask = ops.cast(mask, dist.dtype)
    return ops.sum(dist * mask) / ops.maximum(ops.sum(mask), 1.0)


def cascade_point_loss(stages, true):
    """Point loss of every stage of a cascade ``(B, T, 68, 2)``: returns (mean over stages, (T,) per stage)."""
    true = ops.cast(true, stages.dtype)[:, None]
    dist = ops.sqrt(ops.sum(ops.square(stages - true), axis=-1) + 1e-8)  # (B, T, 68)
    per_stage = ops.mean(dist, axis=(0, 2))
    return ops.mean(per_stage), per_stage


def kl_loss(logits, target, eps=1e-8):
    """KL(target || spatial softmax(logits)) per landmark channel, averaged over channels and batch.

    ``target`` maps are normalised to sum 1 per channel here (so peak-1 Gaussians are fine); channels whose
    target is empty (landmark outside the crop) are left out."""
    h, w, k = logits.shape[1], logits.shape[2], logits.shape[3]
    logits = ops.reshape(ops.cast(logits, "float32"), (-1, h * w, k))
    target = ops.maximum(ops.reshape(ops.cast(target, "float32"), (-1, h * w, k)), 0.0)
    mass = ops.sum(target, axis=1, keepdims=True)
    q = target / ops.maximum(mass, eps)
    log_p = ops.log_softmax(logits, axis=1)
    kl = ops.sum(q * (ops.log(ops.maximum(q, eps)) - log_p), axis=1)  # (B, K)
    valid = ops.cast(mass[:, 0] > eps, "float32")
    return ops.sum(kl * valid) / ops.maximum(ops.sum(valid), 1.0)


def heatmap_l2(pred, target):
    """Mean squared error over all map elements (68 Gaussian maps + background)."""
    return ops.mean(ops.square(ops.cast(pred, "float32") - ops.cast(target, "float32")))


def pixel_ce(logits, labels):
    """Mean softmax cross-entropy over all pixels: logits ``(B, h, w, C)``, int labels ``(B, h, w)``."""
    labels = ops.cast(labels, "int32")
    log_p = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    picked = ops.sum(log_p * ops.one_hot(labels, logits.shape[-1], dtype="float32"), axis=-1)
    return -ops.mean(picked)


def inside_crop(points, input_size):
    """``(B, 68)`` 1.0 where a point lies on the crop (PWC labels drop the others), else 0.0."""
    lo, hi = -0.5, input_size - 0.5
    ok = ops.logical_and(ops.all(points >= lo, axis=-1), ops.all(points < hi, axis=-1))
    return ops.cast(ok, "float32")


def hybrid_loss(logits, labels, points, stride=1, alpha=1.0, beta=0.25, estimate=None):
    """alpha * pixel CE + beta * point loss on the DIFFERENTIABLE local soft-argmax of the class probabilities.

    Returns ``(total, {"ce": ..., "point": ...})``. The released code took the point term on argmax points, which
    carry no gradient; here it reaches the logits. Points off the crop are left out of the point term.
    ``estimate``: that soft-argmax (``decoding.soft_points``) when the caller has it already (the adversarial
    step shows the same points to the discriminator)."""
    ce = pixel_ce(logits, labels)
    input_size = logits.shape[1] * stride
    if estimate is None:
        estimate = soft_points(logits, "hybrid", stride)
    point = point_loss(estimate, points, mask=inside_crop(ops.cast(points, "float32"), input_size))
    return alpha * ce + beta * point, {"ce": ce, "point": point}


# ---- discriminator --------------------------------------------------------------------------------------------

def normalize_shape(points, input_size):
    """Input pixels -> the discriminator's frame: the crop square becomes [-0.5, 0.5]^2 centred on the crop
    centre (x right, y down). Affine, so gradients reach the detector's point estimate unchanged in direction."""
    return crop_to_centred(ops.cast(points, "float32"), float(input_size))


def discriminator_loss(real_logits, fake_logits):
    """-(E[log D(S_gt)] + E[log(1 - D(S_pred))]) with D = sigmoid(logit), MINIMISED by the discriminator."""
    return ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(fake_logits))


def adversarial_loss(fake_logits):
    """Non-saturating detector term -E[log D(S_pred)]."""
    return ops.mean(ops.softplus(-fake_logits))


def discriminator_accuracy(real_logits, fake_logits):
    """Share of shapes the discriminator labels right (real: logit > 0, predicted: logit < 0)."""
    real = ops.mean(ops.cast(real_logits > 0, "float32"))
    fake = ops.mean(ops.cast(fake_logits < 0, "float32"))
    return 0.5 * (real + fake)


__all__ = ["point_loss", "cascade_point_loss", "kl_loss", "heatmap_l2", "pixel_ce", "hybrid_loss", "inside_crop",
           "normalize_shape", "discriminator_loss", "adversarial_loss", "discriminator_accuracy"]
