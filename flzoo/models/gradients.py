"""Taking and applying gradients by hand, on each backend: what the adversarial step needs that ``fit`` hides.

``LandmarkModel._adversarial_step`` is written once in ``keras.ops``; only these three differ per backend.
"""

import keras
from keras import ops


def scratch_scope(variables):
    """A scope whose variable updates (batch-norm statistics) are discarded. On JAX it must carry the current
    values of ``variables`` (the model's), since a nested StatelessScope does not see its parent's."""
    if keras.backend.backend() == "jax":
        return keras.StatelessScope(state_mapping=[(v, v.value) for v in variables])
    return keras.StatelessScope()


def value_and_grad(fn, variables, all_variables):
    """``fn() -> (loss, aux)``; returns ``(loss, aux, grads of loss w.r.t. variables)`` on any backend.

    ``all_variables``: every variable ``fn`` may read (the model's); its non-trainable updates (batch-norm
    statistics) are kept."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss, aux = fn()
        grads = tape.gradient(loss, variables)
    elif backend == "torch":
        import torch

        loss, aux = fn()
        values = [v.value for v in variables]
        grads = torch.autograd.grad(loss, values, allow_unused=True)
    elif backend == "jax":
        import jax

        diff = {id(v) for v in variables}
        others = [v for v in all_variables if id(v) not in diff]
        other_values = [v.value for v in others]
        updated = [v for v in others if not v.trainable]

        def pure(values):
            mapping = list(zip(variables, values)) + list(zip(others, other_values))
            with keras.StatelessScope(state_mapping=mapping) as scope:
                loss, aux = fn()
            return loss, (aux, [scope.get_current_value(v) for v in updated])

        (loss, (aux, updates)), grads = jax.value_and_grad(pure, has_aux=True)([v.value for v in variables])
        for v, value in zip(updated, updates):
            v.assign(value)
    else:
        raise ValueError(f"KERAS_BACKEND={backend!r}: the adversarial step supports tensorflow, jax, torch")
    grads = [ops.zeros_like(v.value) if g is None else g for g, v in zip(grads, variables)]
    return loss, aux, grads


def apply(optimizer, grads, variables):
    """``optimizer.apply`` outside autograd's bookkeeping on torch."""
    if keras.backend.backend() == "torch":
        import torch

        with torch.no_grad():
            optimizer.apply(grads, variables)
    else:
        optimizer.apply(grads, variables)
