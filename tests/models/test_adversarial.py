"""The adversarial train step (pwc_disc / hybrid_disc) on TensorFlow, JAX and PyTorch.

One subprocess per backend (Keras fixes its backend at import). TensorFlow runs first and saves the initial
weights; JAX and PyTorch load them, so all three start identical and must give the same losses and weights.
"""


import numpy as np
import pytest

BACKENDS = ("tensorflow", "jax", "torch")
STEPS = 6
# float32 on CPU: the backends' kernels differ in summation order. Measured over the six steps: losses within
# 2.5e-7 relative, final weights within 7e-6 absolute (JAX and PyTorch vs TensorFlow); the bounds leave ~100x room.
LOSS_RTOL, WEIGHT_ATOL = 1e-4, 1e-4

# The untrained tiny maps are nearly flat, so the soft-argmax window (centred on the argmax cell) can flip on a
# 1e-7 difference; TensorFlow's oneDNN kernels vary their summation order from run to run, so they are switched
# off and TF made deterministic here, to compare backends rather than thread schedules.
CODE = """
import json, os, sys
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
import numpy as np
import keras
if keras.backend.backend() == "tensorflow":
    import tensorflow as tf
    tf.config.experimental.enable_op_determinism()
from keras import ops
from tiny_models import tiny_model, toy_batch

keras.utils.set_random_seed(0)  # the initial weights (the other backends load TensorFlow's)
model = tiny_model({variant!r})
init = {init!r}
if {load}:
    data = np.load(init)
    model.set_weights([data[f"w{{i}}"] for i in range(len(data.files))])
else:
    np.savez(init, **{{f"w{{i}}": w for i, w in enumerate(model.get_weights())}})
x, y = toy_batch(model, n=8, seed=0)
model.compile(optimizer=keras.optimizers.Adam(1e-3), disc_optimizer=keras.optimizers.Adam(1e-2))
det0 = [np.array(v) for v in model.network.trainable_variables]
disc0 = [np.array(v) for v in model.discriminator.trainable_variables]
stats0 = [np.array(v) for v in model.network.non_trainable_variables]
history = []
for _ in range({steps}):
    model.reset_metrics()
    logs = model.train_on_batch(x, y, return_dict=True)
    history.append({{k: float(v) for k, v in logs.items()}})
changed = lambda before, vs: any(not np.allclose(b, np.array(v)) for b, v in zip(before, vs))
np.savez({final!r}, *[np.array(w) for w in model.get_weights()])
print(json.dumps({{
    "history": history,
    "det_changed": changed(det0, model.network.trainable_variables),
    "disc_changed": changed(disc0, model.discriminator.trainable_variables),
    "bn_changed": changed(stats0, model.network.non_trainable_variables),
    "iterations": int(np.array(model.optimizer.iterations)),
    "det_iterations": int(np.array(model.det_optimizer.iterations)),
    "disc_iterations": int(np.array(model.disc_optimizer.iterations)),
}}))
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run hybrid_disc (which exercises everything pwc_disc does, plus the point term) on each backend."""
    from conftest import run_on_backend

    tmp = tmp_path_factory.mktemp("adversarial")
    init = str(tmp / "init.npz")
    results = {}
    for backend in BACKENDS:
        code = CODE.format(variant="hybrid_disc", init=init, load=backend != BACKENDS[0],
                           steps=STEPS, final=str(tmp / f"final_{backend}.npz"))
        results[backend] = run_on_backend(backend, code)
        results[backend]["final"] = np.load(tmp / f"final_{backend}.npz")
    return results


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_adversarial_step_trains_both_networks(runs, backend):
    run = runs[backend]
    assert run["det_changed"] and run["disc_changed"]
    assert run["bn_changed"], "the detector's batch-norm statistics never moved"
    for logs in run["history"]:
        for name in ("loss", "ce", "point", "adv", "disc_loss", "disc_acc"):
            assert np.isfinite(logs[name]), (name, logs)
    # The paper's schedule: per step one discriminator update, then two detector updates.
    assert run["iterations"] == STEPS
    assert run["disc_iterations"] == STEPS and run["det_iterations"] == 2 * STEPS


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_discriminator_learns_to_tell_predictions_from_ground_truth(runs, backend):
    """Untrained predictions are far from face shapes: the discriminator (minimising its loss, not its
    negative as in the released code) must get better at telling them from ground truth."""
    first, last = runs[backend]["history"][0], runs[backend]["history"][-1]
    assert last["disc_loss"] < first["disc_loss"] - 0.1, (first, last)
    # accuracy may start at 1 already (untrained shapes are easy to tell); it must not fall, and ends >= 0.9
    assert last["disc_acc"] >= first["disc_acc"], (first, last)
    assert last["disc_acc"] >= 0.9, last


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS[1:])
def test_backends_agree_from_identical_weights(runs, backend):
    ref, other = runs[BACKENDS[0]], runs[backend]
    for step, (a, b) in enumerate(zip(ref["history"], other["history"])):
        for name in ("loss", "ce", "point", "adv", "disc_loss"):
            assert b[name] == pytest.approx(a[name], rel=LOSS_RTOL, abs=1e-5), (backend, step, name, a, b)
    for key in ref["final"].files:
        np.testing.assert_allclose(other["final"][key], ref["final"][key], atol=WEIGHT_ATOL, err_msg=key)


def test_batch_norm_statistics_move_once_per_update():
    """With frozen weights (learning rate 0) one step of disc_steps=1, det_steps=1 must move the detector's
    statistics exactly as ONE training forward does, and the discriminator's as one forward on
    concat(real, predicted): the extra forwards of the step run in discarded scratch scopes."""
    import keras
    from keras import ops

    from flzoo.losses import normalize_shape
    from tiny_models import tiny_model, toy_batch

    model = tiny_model("pwc_disc", det_steps=1)
    ref = tiny_model("pwc_disc")
    ref.set_weights(model.get_weights())
    x, y = toy_batch(model)
    with keras.StatelessScope():
        fake = normalize_shape(ref.soft_points(ref.network(x, training=True)), ref.input_size)
    ref.network(x, training=True)
    ref.discriminator(ops.concatenate([normalize_shape(y["points"], ref.input_size), fake], axis=0), training=True)

    model.compile(optimizer=keras.optimizers.SGD(0.0), disc_optimizer=keras.optimizers.SGD(0.0))
    model.train_on_batch(x, y)
    for net in ("network", "discriminator"):
        stats = getattr(model, net).non_trainable_variables
        expected = getattr(ref, net).non_trainable_variables
        assert stats
        for a, b in zip(stats, expected):
            np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-5, atol=1e-6, err_msg=f"{net} {a.path}")


def test_validation_reports_the_task_terms_only():
    import keras

    from tiny_models import tiny_model, toy_batch

    model = tiny_model("hybrid_disc")
    x, y = toy_batch(model)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(x, y, batch_size=4, epochs=1, validation_data=(x, y), verbose=0).history
    assert {"loss", "ce", "point", "adv", "disc_loss", "disc_acc", "val_loss", "val_ce", "val_point"} <= set(history)
    assert not {"val_adv", "val_disc_loss", "val_disc_acc"} & set(history)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "ce", "point"}
    # val_loss is the task loss alpha * CE + beta * point
    assert logs["loss"] == pytest.approx(logs["ce"] + 0.25 * logs["point"], rel=1e-5)
