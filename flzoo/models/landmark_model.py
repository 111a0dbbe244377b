"""``LandmarkModel``: a network (+ shape discriminator) with its variant's losses, decoding and training step.

Non-adversarial variants train with a plain ``compile(optimizer=...)`` + ``fit``: ``compute_loss`` picks the
variant's loss and reports each term as a metric. ``pwc_disc`` / ``hybrid_disc`` train with their own
``train_step``: per batch ``disc_steps`` discriminator updates, then ``det_steps`` detector updates (the paper's
1 then 2), each with its own optimizer (a ``keras.optimizers.MultiOptimizer`` built in ``compile`` so that JAX
carries both in its state). The step body is written once in ``keras.ops``; only taking gradients differs per
backend (``flzoo.models.gradients``). Batch-norm statistics move once per detector update: the extra detector
forward that feeds the discriminator update and the discriminator forward inside a detector update run in a
scratch ``keras.StatelessScope`` whose state updates are discarded.
"""

import numpy as np
import keras
from keras import ops

from flzoo import losses
from flzoo.landmarks import NUM_POINTS
from flzoo.models import decoding as _dec
from flzoo.models import gradients
from flzoo.models.variants import ADVERSARIAL_TERMS, VARIANTS

# Gaussian target sigma: the paper's 3 px at 224 input, scaled to the map; below ~1 cell a Gaussian is too
# coarsely sampled for sub-pixel decoding, hence the floor.
PAPER_SIGMA, PAPER_SIZE, MIN_SIGMA = 3.0, 224, 1.0
# The paper's loss_total = loss_hybrid + loss_face: the adversarial term has weight 1.
DEFAULT_ADV_WEIGHT = 1.0


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"LandmarkModel {name}={value!r}: expected an integer >= {minimum}")
    return int(value)


@keras.saving.register_keras_serializable(package="flzoo")
class LandmarkModel(keras.Model):
    """A landmark network of one paper variant, trainable with ``compile`` + ``fit`` on any backend.

    ``network``: functional model image ``(B, S, S, 3)`` RGB 0..255 -> the variant's output (see
    docs/ARCHITECTURE.md); ``input_size`` S; ``stride``: output map stride (1 for point variants);
    ``discriminator``: shape discriminator (adversarial variants only); ``decoding``: ``argmax`` | ``subpixel`` |
    ``soft_argmax``; ``config``: the ``flzoo.models.build`` kwargs; ``alpha`` / ``beta``: hybrid CE / point
    weights; ``adv_weight``: weight of the detector's adversarial term; ``disc_steps`` / ``det_steps``:
    discriminator then detector updates per batch; ``sigma``: Gaussian target std in map cells for distribution /
    heatmap_reg (None: the paper's 3 px at 224 scaled to the map, at least 1). Choices and reasons: docs/losses.md.
    ``decoding=None`` picks the variant's default: the local soft-argmax for hybrid / hybrid_disc, whose point
    loss trains exactly that estimate, sub-pixel peak refinement otherwise."""

    def __init__(self, network, variant, input_size, stride=1, discriminator=None, decoding=None, config=None,
                 alpha=1.0, beta=0.25, adv_weight=DEFAULT_ADV_WEIGHT, disc_steps=1, det_steps=2, sigma=None,
                 **kwargs):
        if variant not in VARIANTS:
            raise ValueError(f"LandmarkModel variant={variant!r}: expected one of {', '.join(VARIANTS)}")
        spec = VARIANTS[variant]
        decoding = decoding or spec.decoding
        if decoding not in _dec.METHODS:
            raise ValueError(f"LandmarkModel decoding={decoding!r}: expected one of "
                             f"{', '.join(_dec.METHODS)}")
        if discriminator is not None and not spec.adversarial:  # an adversarial one without it: inference copy
            raise ValueError(f"LandmarkModel variant={variant!r} takes no discriminator (got {discriminator!r})")
        input_size = _check_int("input_size", input_size, 1)
        stride = _check_int("stride", stride, 1)
        for name, value in (("alpha", alpha), ("beta", beta), ("adv_weight", adv_weight)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"LandmarkModel {name}={value!r}: expected a number >= 0")
        if sigma is not None and (isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma > 0):
            raise ValueError(f"LandmarkModel sigma={sigma!r}: expected a number > 0 (map cells) or None")
        kwargs.setdefault("name", f"flzoo_{variant}")
        super().__init__(**kwargs)
        self.network = network
        self.discriminator = discriminator
        self.variant, self.input_size, self.stride, self.decoding = variant, input_size, stride, decoding
        self.alpha, self.beta, self.adv_weight = float(alpha), float(beta), float(adv_weight)
        self.sigma = None if sigma is None else float(sigma)
        self.disc_steps = _check_int("disc_steps", disc_steps, 1)
        self.det_steps = _check_int("det_steps", det_steps, 1)
        self._config = dict(config) if config is not None else None
        self._check_output()
        self._trackers = {name: keras.metrics.Mean(name=name) for name in self._term_names()}
        self.built = True  # the networks are built functional models

    # ---- structure --------------------------------------------------------------------------------------------

    def _check_output(self):
        shape = tuple(getattr(self.network, "output_shape", None) or ())
        if not shape:
            return
        size, where = self.input_size, f"network {getattr(self.network, 'name', '?')} output"
        output = self.spec.output
        if output == "points" and shape[1:] != (NUM_POINTS, 2):
            raise ValueError(f"{where} shape {shape}: variant {self.variant!r} expects (B, 68, 2)")
        if output == "stages" and (len(shape) != 4 or shape[2:] != (NUM_POINTS, 2)):
            raise ValueError(f"{where} shape {shape}: variant {self.variant!r} expects (B, stages, 68, 2)")
        if output == "maps":
            expected = (size // self.stride, size // self.stride, self.spec.map_channels)
            if shape[1:] != expected or size % self.stride:
                raise ValueError(f"{where} shape {shape}: variant {self.variant!r} at input_size={size}, "
                                 f"stride={self.stride} expects (B, {expected[0]}, {expected[1]}, {expected[2]})")

    def _term_names(self):
        names = list(self.spec.terms)
        if self.spec.output == "stages":
            names += [f"point_stage{i + 1}" for i in range(self.network.output_shape[1])]
        if self.spec.adversarial:
            names += list(ADVERSARIAL_TERMS)
        return names

    @property
    def spec(self):
        """The variant's record (``flzoo.models.variants``)."""
        return VARIANTS[self.variant]

    def call(self, x, training=None):
        return self.network(x, training=training)

    @property
    def target_spec(self):
        """Which ``y["maps"]`` the data pipeline makes for this model (sigma in map cells)."""
        from flzoo.data.targets import TargetSpec

        sigma = self.sigma or max(PAPER_SIGMA * self.input_size / PAPER_SIZE / self.stride, MIN_SIGMA)
        return TargetSpec(kind=self.spec.target, stride=self.stride, sigma=float(sigma))

    def build_config(self):
        """The ``flzoo.models.build`` kwargs that rebuild this model."""
        if self._config is None:
            raise ValueError(f"LandmarkModel {self.name!r} was made without `config` (the flzoo.models.build "
                             f"kwargs), so it cannot be rebuilt; make it with flzoo.models.build(...)")
        return dict(self._config)

    def get_config(self):
        return self.build_config()

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from flzoo.models import build

        return build(**config)

    # ---- losses -----------------------------------------------------------------------------------------------

    def _targets(self, y):
        if not isinstance(y, dict) or "points" not in y:
            raise ValueError(f"LandmarkModel {self.variant!r}: training targets must be a dict with 'points' "
                             f"(B, 68, 2){'' if self.spec.target == 'points' else ' and maps'}; "
                             f"got {type(y).__name__}{' keys ' + str(sorted(y)) if isinstance(y, dict) else ''}")
        if self.spec.target != "points" and "maps" not in y:
            raise ValueError(f"LandmarkModel {self.variant!r}: targets lack 'maps' (kind "
                             f"{self.spec.target!r}, see model.target_spec); got keys {sorted(y)}")
        return y

    def _task_loss(self, y, out, estimate=None):
        """The variant's detector loss: (total, {term name: value}); ``estimate``: ``soft_points(out)`` if the
        caller has it already."""
        kind, points = self.spec.loss, ops.cast(y["points"], "float32")
        if kind == "point":
            point = losses.point_loss(ops.cast(out, "float32"), points)
            return point, {"point": point}
        if kind == "cascade":
            mean, per_stage = losses.cascade_point_loss(ops.cast(out, "float32"), points)
            terms = {"point": mean}
            terms.update({f"point_stage{i + 1}": per_stage[i] for i in range(out.shape[1])})
            return mean, terms
        if kind == "kl":
            kl = losses.kl_loss(out, y["maps"])
            return kl, {"kl": kl}
        if kind == "l2":
            l2 = losses.heatmap_l2(out, y["maps"])
            return l2, {"l2": l2}
        if kind == "ce":
            ce = losses.pixel_ce(out, y["maps"])  # alpha / beta weigh the hybrid's terms only
            return ce, {"ce": ce}
        if kind == "hybrid":
            return losses.hybrid_loss(out, y["maps"], points, self.stride, self.alpha, self.beta, estimate)
        raise ValueError(f"variant {self.variant!r}: loss {kind!r} is not one LandmarkModel knows")

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if sample_weight is not None:
            raise ValueError("LandmarkModel does not support sample_weight (got one from fit/evaluate)")
        total, terms = self._task_loss(self._targets(y), y_pred)
        for name, value in terms.items():
            self._trackers[name].update_state(value)
        for extra in self.losses:  # regularisers, if a network adds any
            total = total + ops.cast(extra, total.dtype)
        return total

    # ---- decoding ---------------------------------------------------------------------------------------------

    def decode(self, output, method=None):
        """Network output -> ``(B, 68, 2)`` input pixels (``method`` defaults to the model's decoding)."""
        return _dec.decode_output(output, self.variant, self.stride, method or self.decoding)

    def soft_points(self, output):
        """Differentiable point estimate (input pixels): the points themselves for point variants."""
        if self.spec.output != "maps":
            return self.decode(output)
        return _dec.soft_points(output, self.variant, self.stride)

    def inference_model(self, method=None):
        """A functional ``keras.Model`` image ``(B, S, S, 3)`` RGB 0..255 -> points ``(B, 68, 2)`` input pixels."""
        method = method or self.decoding
        cache = self.__dict__.setdefault("_flzoo_inference", {})
        if method not in cache:
            image = keras.Input((self.input_size, self.input_size, 3), name="image")
            points = _dec.PointDecoder(self.variant, self.stride, method, name="points")(self.network(image))
            cache[method] = keras.Model(image, points, name=f"{self.name}_points")
        return cache[method]

    def predict_points(self, x, batch_size=32, method=None):
        """Images ``(B, S, S, 3)`` RGB 0..255 -> numpy ``(B, 68, 2)`` float32 input pixels."""
        x = np.asarray(x, dtype=np.float32)
        expected = (self.input_size, self.input_size, 3)
        if x.ndim != 4 or x.shape[1:] != expected:
            raise ValueError(f"predict_points: images of shape {x.shape}, expected (B, {expected[0]}, "
                             f"{expected[1]}, 3) RGB 0..255")
        model = self.inference_model(method)
        out = [np.asarray(model.predict_on_batch(x[i:i + batch_size]), dtype=np.float32)
               for i in range(0, len(x), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, 68, 2), np.float32)

    # ---- adversarial training ---------------------------------------------------------------------------------

    def compile(self, optimizer="adam", disc_optimizer=None, **kwargs):
        """``optimizer`` trains the detector; adversarial variants train the discriminator with
        ``disc_optimizer`` (default: a fresh copy of ``optimizer``'s configuration)."""
        if self.discriminator is None and self.spec.adversarial:
            raise ValueError(f"compile: this {self.variant} was built without its shape discriminator (an "
                             f"inference copy, like the bundled presets), so it cannot be trained; build it with "
                             f"discriminator=True")
        if self.discriminator is None:
            if disc_optimizer is not None:
                raise ValueError(f"compile(disc_optimizer=...): variant {self.variant!r} has no discriminator")
            return super().compile(optimizer=optimizer, **kwargs)
        if isinstance(optimizer, keras.optimizers.MultiOptimizer):
            raise ValueError("compile(optimizer=MultiOptimizer): pass the detector's optimizer as `optimizer` and "
                             "the discriminator's as `disc_optimizer`; the model builds the MultiOptimizer")
        det_opt = keras.optimizers.get(optimizer)
        if disc_optimizer is None:
            disc_opt = det_opt.__class__.from_config(det_opt.get_config())
        else:
            disc_opt = keras.optimizers.get(disc_optimizer)
        if disc_opt is det_opt:
            raise ValueError("compile: `optimizer` and `disc_optimizer` must be different optimizer objects")
        disc_ids = {id(v) for v in self.discriminator.trainable_variables}
        multi = keras.optimizers.MultiOptimizer(lambda v: disc_opt if id(v) in disc_ids else det_opt)
        super().compile(optimizer=multi, **kwargs)
        # Built here for ALL trainable variables: JAX's train state then holds both optimizers' slots.
        multi.build(self.trainable_variables)
        self.__dict__["_flzoo_optimizers"] = (det_opt, disc_opt)

    def _optimizers(self):
        if "_flzoo_optimizers" not in self.__dict__:
            raise ValueError(f"LandmarkModel {self.variant!r}: call compile(optimizer=..., disc_optimizer=...) "
                             f"before training (the adversarial step needs both optimizers)")
        return self.__dict__["_flzoo_optimizers"]

    @property
    def det_optimizer(self):
        """The detector's optimizer (adversarial variants, after ``compile``)."""
        return self._optimizers()[0]

    @property
    def disc_optimizer(self):
        """The discriminator's optimizer (adversarial variants, after ``compile``)."""
        return self._optimizers()[1]

    def train_step(self, *args):
        if self.discriminator is None:
            return super().train_step(*args)
        if keras.backend.backend() == "jax":
            return self._jax_adversarial_step(*args)
        return self._adversarial_step(*args)

    def test_step(self, *args):
        """Validation: the task terms only (no discriminator update, so its trackers would read 0)."""
        result = super().test_step(*args)
        if self.discriminator is None:
            return result
        drop = ADVERSARIAL_TERMS
        if keras.backend.backend() == "jax":
            logs, state = result
            return {k: v for k, v in logs.items() if k not in drop}, state
        return {k: v for k, v in result.items() if k not in drop}

    def _jax_adversarial_step(self, state, data):
        """JAX: run the stateful step body inside a StatelessScope over the train state, then read it back."""
        groups = (self.trainable_variables, self.non_trainable_variables, self.optimizer.variables,
                  self.metrics_variables)
        mapping = [(v, value) for group, values in zip(groups, state) for v, value in zip(group, values)]
        with keras.StatelessScope(state_mapping=mapping) as scope:
            logs = self._adversarial_step(data)
        new_state = tuple([scope.get_current_value(v) for v in group] for group in groups)
        return logs, new_state

    def _adversarial_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise ValueError("LandmarkModel does not support sample_weight (got one from fit)")
        y = self._targets(y)
        real = losses.normalize_shape(y["points"], self.input_size)
        n = ops.shape(real)[0]
        det_vars = self.network.trainable_variables
        disc_vars = self.discriminator.trainable_variables

        with gradients.scratch_scope(self.variables):  # shapes for the discriminator; BN statistics untouched
            fake = ops.stop_gradient(losses.normalize_shape(self.soft_points(self.network(x, training=True)),
                                                            self.input_size))

        def disc_loss():
            logits = self.discriminator(ops.concatenate([real, fake], axis=0), training=True)
            real_logits, fake_logits = logits[:n], logits[n:]
            return (losses.discriminator_loss(real_logits, fake_logits),
                    losses.discriminator_accuracy(real_logits, fake_logits))

        for _ in range(self.disc_steps):
            d_loss, d_acc, grads = gradients.value_and_grad(disc_loss, disc_vars, self.variables)
            gradients.apply(self.disc_optimizer, grads, disc_vars)

        def det_loss():
            out = self.network(x, training=True)
            estimate = self.soft_points(out)  # one soft-argmax for the point term and the discriminator
            task, terms = self._task_loss(y, out, estimate)
            shapes = losses.normalize_shape(estimate, self.input_size)
            with gradients.scratch_scope(self.variables):  # same batch statistics as the discriminator's update
                logits = self.discriminator(ops.concatenate([real, shapes], axis=0), training=True)
            adv = losses.adversarial_loss(logits[n:])
            return task + self.adv_weight * adv, (terms, adv)

        for _ in range(self.det_steps):
            total, (terms, adv), grads = gradients.value_and_grad(det_loss, det_vars, self.variables)
            gradients.apply(self.det_optimizer, grads, det_vars)
        self.optimizer.iterations.assign_add(1)

        self._loss_tracker.update_state(total)
        for name, value in {**terms, "adv": adv, "disc_loss": d_loss, "disc_acc": d_acc}.items():
            self._trackers[name].update_state(value)
        return self.get_metrics_result()
