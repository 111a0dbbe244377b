"""Training: checkpoints (write-then-rename, exact restore, damaged ones skipped), the step -> batch mapping, the
log truncation on resume, and end-to-end runs of flzoo-train on the real data (every variant; the adversarial
ones on every backend; SIGKILL + --resume; a damaged newest checkpoint; data-parallel on a simulated 2-device
JAX mesh)."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from flzoo.paths import REPO_ROOT
from flzoo.train import checkpoint
from flzoo.train.checkpoint import RunError
from flzoo.train.recipe import VARIANTS

# A few faces at 32 px: every variant builds and steps in seconds on 2 CPU cores.
TINY = ["--set", "data.max_faces=8", "--set", "data.max_val_faces=4", "--set", "train.batch_size=4",
        "--set", "output.overlays=2"]


# ---------------------------------------------------------------- unit: checkpoints, mapping, log


def _tiny_model(seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,))
    h = keras.layers.Dense(8, activation="relu")(inputs)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.Dropout(0.5, seed=1)(h)  # a seed-generator state that must be restored too
    model = keras.Model(inputs, keras.layers.Dense(2)(h))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    checkpoint.build_optimizers(model)
    return model


def _data(n=32):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, (x[:, :2] * 2 + 1).astype("float32")


def _values(model):
    return [np.array(v.numpy()) for v in list(model.variables) + checkpoint.optimizer_variables(model)]


def test_checkpoint_restores_weights_optimizer_and_seed_state_exactly(tmp_path):
    x, y = _data()
    a = _tiny_model()
    a.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    checkpoint.save(tmp_path, 4, a, {"best_val_nme": 0.5, "data": {"n": 1}})
    state_a = _values(a)
    np.random.seed(3)
    expected_draw = np.random.rand()
    a.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)  # continue uninterrupted

    b = _tiny_model(seed=1)  # different initial weights
    np.random.seed(99)
    state = checkpoint.load(tmp_path / "step_00000004", b)
    assert state["step"] == 4 and state["best_val_nme"] == 0.5 and state["data"] == {"n": 1}
    for before, after in zip(state_a, _values(b)):
        np.testing.assert_array_equal(before, after)
    assert int(b.optimizer.iterations.numpy()) == 4
    np.random.seed(3)
    assert np.random.rand() == expected_draw
    b.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for va, vb in zip(_values(a), _values(b)):  # same next epoch, dropout masks included
        np.testing.assert_allclose(va, vb, rtol=1e-6, atol=1e-7)


def test_half_written_checkpoint_never_replaces_a_good_one(tmp_path, monkeypatch):
    import safetensors.numpy

    model = _tiny_model()
    good = checkpoint.save(tmp_path, 2, model, {})

    def crash(tensors, filename, *args, **kwargs):
        Path(filename).write_bytes(b"half")  # a truncated file, then the process "dies"
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(safetensors.numpy, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(tmp_path, 4, model, {})
    assert checkpoint.latest(tmp_path) == good  # the debris is a hidden .tmp folder, never a step_*
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    monkeypatch.undo()
    checkpoint.save(tmp_path, 6, model, {})
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]  # swept by the next save
    checkpoint.save(tmp_path, 8, model, {}, keep=2)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["step_00000006", "step_00000008"]


def test_checkpoint_refuses_a_different_model(tmp_path):
    import keras

    checkpoint.save(tmp_path, 1, _tiny_model(), {})
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    other.compile(optimizer="adam", loss="mse")
    checkpoint.build_optimizers(other)
    with pytest.raises(ValueError, match="holds .* model variables but the model built from the recipe has"):
        checkpoint.load(tmp_path / "step_00000001", other)


def _damage(folder, file):
    """What a dying disk or an interrupted copy leaves: half of ``file``."""
    path = Path(folder) / file
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


@pytest.mark.parametrize("file", ["state.json", "state.safetensors"])
def test_resume_skips_a_damaged_newest_checkpoint_and_reaches_the_same_step(tmp_path, file):
    x, y = _data()
    whole = _tiny_model()
    whole.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    good = checkpoint.save(tmp_path, 4, whole, {"data": {"n": 1}})
    whole.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    newest = checkpoint.save(tmp_path, 8, whole, {"data": {"n": 1}})
    expected = _values(whole)
    _damage(newest, file)
    if file == "state.json":  # seen without loading the weights (the CLI's check before Keras starts)
        assert checkpoint.latest(tmp_path) == good

    resumed, messages = _tiny_model(seed=1), []
    path, state = checkpoint.load_newest(tmp_path, resumed, require=("data",), log=messages.append)
    assert path == good and state["step"] == 4 and state["data"] == {"n": 1}
    assert len(messages) == 1 and messages[0].startswith(f"skipping checkpoint {newest}")
    assert str(newest / file) in messages[0] and "unreadable" in messages[0]
    resumed.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)  # steps 5..8 again
    assert checkpoint.save(tmp_path, 8, resumed, {"data": {"n": 1}}) == newest  # replaces the damaged folder
    for a, b in zip(expected, _values(resumed)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    path, state = checkpoint.load_newest(tmp_path, _tiny_model(seed=2), log=messages.append)
    assert path == newest and state["step"] == 8 and len(messages) == 1


def test_a_damaged_checkpoint_is_a_run_error_naming_file_and_field_and_changes_nothing(tmp_path):
    path = checkpoint.save(tmp_path, 2, _tiny_model(), {"data": {"n": 1}})
    text = (path / "state.json").read_text()
    state = json.loads(text)
    target = _tiny_model(seed=1)
    before = _values(target)
    np.random.seed(5)
    draw = np.random.rand()

    def check(match, require=("data",)):
        np.random.seed(5)
        with pytest.raises(RunError, match=match):
            checkpoint.load(path, target, require)
        for a, b in zip(before, _values(target)):  # all or nothing: no variable assigned, RNG untouched
            np.testing.assert_array_equal(a, b)
        assert np.random.rand() == draw
        (path / "state.json").write_text(text)

    json_file, tensors_file = (str(path / n) for n in ("state.json", "state.safetensors"))
    (path / "state.json").write_text("{garbage")
    check(f"checkpoint file {re.escape(json_file)} is unreadable .*JSONDecodeError")
    for field in ("rng", "data"):
        (path / "state.json").write_text(json.dumps({k: v for k, v in state.items() if k != field}))
        check(f"{re.escape(json_file)} has no field '{field}'")
    (path / "state.json").write_text(json.dumps(dict(state, step="2")))
    check(f"{re.escape(json_file)}: field 'step' is '2'; expected an integer")
    (path / "state.json").write_text(json.dumps(dict(state, rng={"python": [3]})))
    check(f"{re.escape(json_file)}: field 'rng' is malformed")
    _damage(path, "state.safetensors")
    check(f"checkpoint file {re.escape(tensors_file)} is unreadable .*SafetensorError")

    messages = []
    with pytest.raises(RunError, match=r"no readable checkpoint in .*step_00000002: checkpoint file .*unreadable"):
        checkpoint.load_newest(tmp_path, target, log=messages.append)
    assert len(messages) == 1 and "skipping checkpoint" in messages[0]
    assert checkpoint.load_newest(tmp_path / "none", target) == (None, None)  # no checkpoint: a fresh start


def test_resume_with_no_readable_checkpoint_fails_cleanly(tmp_path):
    """Found before Keras is imported: exit status 1, the damaged files named, no traceback."""
    out = tmp_path / "run"
    for step in (2, 4):
        folder = out / "checkpoints" / f"step_{step:08d}"
        folder.mkdir(parents=True)
        (folder / "state.json").write_text('{"step": ' + str(step) + ', "rng": {"pyth')  # cut mid-write
        (folder / "state.safetensors").write_bytes(b"")
    proc = subprocess.run([sys.executable, "-m", "flzoo.train.cli", str(REPO_ROOT / "recipes/lite/pwc.yaml"),
                           "--out", str(out), "--data", str(tmp_path), "--no-progress", "--resume"],
                          capture_output=True, text=True, env=_env(), cwd=REPO_ROOT, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "no readable checkpoint" in proc.stderr
    for step in (2, 4):
        assert str(out / "checkpoints" / f"step_{step:08d}" / "state.json") in proc.stderr


def test_truncate_log_drops_later_lines_and_a_half_written_last_one(tmp_path):
    from flzoo.train.run_folder import truncate_log

    log = tmp_path / "log.jsonl"
    lines = [json.dumps({"step": s, "val_nme": 0.1}) for s in (2, 4, 6)]
    half = '{"step": 8, "losses": {"l'  # the process died mid-write
    messages = []
    log.write_text("\n".join(lines) + "\n" + half)
    truncate_log(log, 6, messages.append)  # resuming from the checkpoint at step 6
    assert log.read_text().splitlines() == lines
    assert len(messages) == 1 and "half-written last line 4" in messages[0]
    log.write_text("\n".join(lines) + "\n" + half)
    truncate_log(log, 4, messages.append)
    assert log.read_text() == lines[0] + "\n" + lines[1] + "\n"
    log.write_text("\n".join([lines[0], half, lines[1]]) + "\n")  # damage elsewhere is not a kill: refused
    with pytest.raises(RunError, match=f"{re.escape(str(log))} line 2 is not a log entry"):
        truncate_log(log, 4, messages.append)


def test_step_range_maps_global_steps_to_epoch_and_index():
    from flzoo.train.loop import _step_range_class

    class Batches:
        def __len__(self):
            return 3

        def batch(self, i, epoch):
            return (epoch, i)

    steps = _step_range_class()(Batches(), 5, 11)
    assert len(steps) == 6
    assert [steps[i] for i in range(6)] == [(1, 2), (2, 0), (2, 1), (2, 2), (3, 0), (3, 1)]
    assert steps[0] == (1, 2)  # random access (Keras peeks at items for shapes) still maps correctly


def test_batches_built_ahead_on_threads_come_in_step_order():
    import threading
    import time

    from flzoo.train.loop import _batches_ahead

    threads = set()

    class Batches:
        def __len__(self):
            return 3

        def batch(self, i, epoch):
            threads.add(threading.get_ident())
            time.sleep(0.01 * ((i + epoch) % 2))  # uneven costs: a later step may finish first
            return (epoch, i)

    for workers in (1, 3):
        got = list(_batches_ahead(Batches(), 5, 11, workers))
        assert got == [(1, 2), (2, 0), (2, 1), (2, 2), (3, 0), (3, 1)]
    assert threading.get_ident() not in threads  # built off the training thread


# ---------------------------------------------------------------- end to end on the real data


def _train_cmd(recipe, out, *extra, backend="tensorflow"):
    return [sys.executable, "-m", "flzoo.train.cli", str(REPO_ROOT / recipe), "--out", str(out),
            "--backend", backend, "--no-progress", *TINY, *extra]


def _env(**extra):
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **extra)


def _run(cmd, timeout=600, **env):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(**env), cwd=REPO_ROOT)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def _run_many(backend, runs, data_root, devices=None):
    """Several flzoo-train invocations in ONE interpreter (Keras imports once): ``runs`` = [(recipe, out, args)].
    ``devices``: split the CPU into that many devices (XLA flag on JAX, logical devices on TensorFlow)."""
    setup = ""
    if devices and backend == "tensorflow":
        setup = ("import tensorflow as tf\n"
                 "cpu = tf.config.list_physical_devices('CPU')[0]\n"
                 f"tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * "
                 f"{devices})\n")
    code = setup + textwrap.dedent(f"""
        import json, sys
        from flzoo.train.cli import main
        for recipe, out, args in {runs!r}:
            main([recipe, "--out", out, "--data", {str(data_root)!r}, "--backend", {backend!r}, "--no-progress",
                  *{TINY!r}, *args], standalone_mode=False)
        print(json.dumps("ok"))
    """)
    env = {"XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"} if devices and backend == "jax" else {}
    _run([sys.executable, "-c", code], KERAS_BACKEND=backend, **env)


def _check_run(out, steps, variant):
    out = Path(out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["step"] == steps and metrics["finished"] == "max_steps" and metrics["variant"] == variant
    assert 0 < metrics["best_val_nme"] < 10
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log and log[-1]["step"] == steps and all(np.isfinite(v) for v in log[-1]["losses"].values())
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["build"]["variant"] == variant and (out / "best" / "model.safetensors").stat().st_size > 0
    assert config["crop"] == {"scale": 1.3, "centre": "box"}  # the crop protocol travels with the model
    assert sorted(p.name for p in (out / "overlays").glob("*.png")) == ["val_00.png", "val_01.png"]
    return metrics


def _lite(variant, tmp_path, size=32, steps=2):
    if variant == "cascaded":
        size = 112  # DAN's fixed sub-network geometry
    return (str(REPO_ROOT / "recipes" / "lite" / f"{variant}.yaml"), str(tmp_path / variant),
            ["--set", f"model.input_size={size}", "--set", f"train.max_steps={steps}", "--set", "train.val_every=2"])


@pytest.mark.data
@pytest.mark.slow
def test_every_variant_trains_from_its_lite_recipe_on_tensorflow(data_root, tmp_path):
    """All eight lite recipes, then pwc data-parallel under tf.distribute.MirroredStrategy over 2 logical CPUs.
    Eager steps for the eight: tracing eight train functions costs minutes on 2 cores; the compiled TF path is
    covered by the data-parallel run here and the SIGKILL test (hybrid_disc)."""
    runs = [(r, o, a + ["--set", "train.run_eagerly=true"]) for r, o, a in (_lite(v, tmp_path) for v in VARIANTS)]
    recipe, _, args = _lite("pwc", tmp_path)
    parallel = (recipe, str(tmp_path / "parallel"), args + ["--set", "distribute.enabled=true"])
    _run_many("tensorflow", runs + [parallel], data_root, devices=2)
    for (_, out, _), variant in zip(runs, VARIANTS):
        metrics = _check_run(out, 2, variant)
        assert metrics["backend"] == "tensorflow" and metrics["devices"] == 1
    metrics = _check_run(tmp_path / "parallel", 2, "pwc")
    assert metrics["devices"] == 2


def _check_adversarial(out, variant, backend):
    metrics = _check_run(out, 2, variant)
    assert metrics["backend"] == backend
    log = json.loads((Path(out) / "log.jsonl").read_text().splitlines()[-1])
    assert {"disc_loss", "adv", "ce"} <= set(log["losses"])  # both players were trained


@pytest.mark.data
@pytest.mark.slow
def test_adversarial_variants_and_data_parallel_on_jax(data_root, tmp_path):
    """One JAX process (Keras + XLA start once) on a simulated 2-device CPU mesh: both adversarial variants on one
    device, then ``distribute.enabled`` (keras.distribution.DataParallel) over the two devices."""
    from conftest import backend_available

    if not backend_available("jax"):
        pytest.skip("Keras backend 'jax' is not installed (pip install 'flzoo[jax]')")
    variants = ["pwc_disc", "hybrid_disc"]
    recipe, out, args = _lite("pwc", tmp_path)
    parallel = (recipe, str(tmp_path / "parallel"), args + ["--set", "distribute.enabled=true"])
    _run_many("jax", [_lite(v, tmp_path) for v in variants] + [parallel], data_root, devices=2)
    for v in variants:
        _check_adversarial(tmp_path / v, v, "jax")
    metrics = _check_run(tmp_path / "parallel", 2, "pwc")
    assert metrics["devices"] == 2 and metrics["backend"] == "jax"


@pytest.mark.data
@pytest.mark.slow
def test_adversarial_variants_train_on_torch(data_root, tmp_path):
    from conftest import backend_available

    if not backend_available("torch"):
        pytest.skip("Keras backend 'torch' is not installed (pip install 'flzoo[torch]')")
    variants = ["pwc_disc", "hybrid_disc"]
    _run_many("torch", [_lite(v, tmp_path) for v in variants], data_root)
    for v in variants:
        _check_adversarial(tmp_path / v, v, "torch")


def _final_tensors(out, step):
    from safetensors.numpy import load_file

    return load_file(str(Path(out) / "checkpoints" / f"step_{step:08d}" / "state.safetensors"))


@pytest.mark.data
@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_run(data_root, tmp_path):
    """Checkpoint every 2 steps; kill -9 as soon as the first checkpoint exists; --resume; compare with a run that
    was never interrupted. Same backend, same thread count and a pure (seed, epoch, index) data pipeline: the
    weights after the final step agree to float32 round-off (TF CPU kernels are deterministic here, so in
    practice they are identical; the tolerance only covers reduction-order differences)."""
    steps = 12
    args = ["--data", str(data_root), "--set", f"train.max_steps={steps}", "--set", "train.checkpoint_every=2",
            "--set", "train.val_every=4", "--set", "model.input_size=32"]
    recipe = "recipes/lite/hybrid_disc.yaml"
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    _run(_train_cmd(recipe, whole, *args))

    proc = subprocess.Popen(_train_cmd(recipe, broken, *args), env=_env(), cwd=REPO_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while checkpoint.latest(broken / "checkpoints") is None and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = int(checkpoint.latest(broken / "checkpoints").name.split("_")[1])
    assert killed_at < steps

    # Without --resume the folder is refused; a changed recipe is refused too.
    refused = subprocess.run(_train_cmd(recipe, broken, *args), capture_output=True, text=True, env=_env(),
                             cwd=REPO_ROOT)
    assert refused.returncode == 1 and "pass --resume" in refused.stderr
    changed = subprocess.run(_train_cmd(recipe, broken, *args, "--resume", "--set", "train.learning_rate=0.5"),
                             capture_output=True, text=True, env=_env(), cwd=REPO_ROOT)
    assert changed.returncode == 1 and "differs" in changed.stderr and "train.learning_rate" in changed.stderr

    resumed = _run(_train_cmd(recipe, broken, *args, "--resume"))
    assert f"from step {killed_at}" in resumed.stderr
    m_whole, m_broken = (json.loads((d / "metrics.json").read_text()) for d in (whole, broken))
    assert m_whole["step"] == m_broken["step"] == steps
    assert m_whole["images_per_s_after_compile"] > 0  # five segments after the first (the compile)
    a, b = _final_tensors(whole, steps), _final_tensors(broken, steps)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=key)
    # Same recipe + seed -> same losses and validation NMEs, line by line (the first lines come from before the
    # kill, the rest from the resumed process).
    log_a, log_b = ((d / "log.jsonl").read_text().splitlines() for d in (whole, broken))
    assert [json.loads(x)["step"] for x in log_b] == [4, 8, 12]
    for la, lb in zip(map(json.loads, log_a), map(json.loads, log_b)):
        assert la["losses"].keys() == lb["losses"].keys()
        for k in la["losses"]:
            assert la["losses"][k] == pytest.approx(lb["losses"][k], rel=1e-5)
        assert la["val_nme"] == pytest.approx(lb["val_nme"], rel=1e-5)
    # Resuming a finished run does nothing and says so.
    again = _run(_train_cmd(recipe, broken, *args, "--resume"))
    assert "already finished" in again.stderr


@pytest.mark.data
@pytest.mark.slow
def test_resume_after_damage_continues_from_the_previous_good_checkpoint(data_root, tmp_path):
    """A 6-step run, cut back to what a kill between the step-4 and step-6 checkpoints leaves, then damaged: the
    step-4 checkpoint truncated and the log ending in a half-written line. --resume skips the damaged checkpoint
    (saying so), continues from step 2 and ends at step 6 with the weights of the uninterrupted run."""
    out = tmp_path / "run"
    args = ["--data", str(data_root), "--set", "train.max_steps=6", "--set", "train.checkpoint_every=2",
            "--set", "train.val_every=2", "--set", "train.keep_checkpoints=3", "--set", "model.input_size=32",
            "--set", "train.run_eagerly=true"]
    _run(_train_cmd("recipes/lite/pwc.yaml", out, *args))
    before = _final_tensors(out, 6)
    shutil.rmtree(out / "checkpoints" / "step_00000006")
    _damage(out / "checkpoints" / "step_00000004", "state.safetensors")
    with open(out / "log.jsonl", "a") as f:
        f.write('{"step": 8, "losses": {"l')
    resumed = _run(_train_cmd("recipes/lite/pwc.yaml", out, *args, "--resume"))
    assert "skipping checkpoint" in resumed.stderr and "step_00000004/state.safetensors" in resumed.stderr
    assert "half-written last line" in resumed.stderr and "Traceback" not in resumed.stderr
    assert "from step 2 (step_00000002)" in resumed.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["step"] == 6 and metrics["finished"] == "max_steps"
    assert [json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines()] == [2, 4, 6]
    after = _final_tensors(out, 6)
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_allclose(before[key], after[key], rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.mark.data
@pytest.mark.slow
def test_paper_scale_recipe_starts_steps_and_checkpoints(data_root, tmp_path):
    """The paper's VGG19-FCN PWC recipe (83 M parameters) as shipped, shrunk only in input size, faces and steps:
    one step, one validation, a resumable ~1 GB checkpoint (weights + Adam moments). Eager: tracing this graph
    on 2 CPU cores costs more than the step."""
    out = tmp_path / "paper"
    _run([sys.executable, "-m", "flzoo.train.cli", str(REPO_ROOT / "recipes" / "pwc.yaml"), "--out", str(out),
          "--data", str(data_root), "--no-progress", "--set", "data.max_faces=2", "--set", "data.max_val_faces=2",
          "--set", "train.batch_size=2", "--set", "train.max_steps=1", "--set", "model.input_size=32",
          "--set", "train.run_eagerly=true", "--set", "output.overlays=1"])
    resolved = yaml.safe_load((out / "recipe.yaml").read_text())
    assert resolved["model"]["backbone"] == "vgg19_fcn" and resolved["train"]["learning_rate"] == 1e-4
    state = checkpoint.read_state(checkpoint.latest(out / "checkpoints"))
    assert state["step"] == 1 and state["finished"] == "max_steps"
    assert len(state["variables"]["optimizer"]) > 2 * sum(1 for p in state["variables"]["model"] if "kernel" in p)
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["build"]["backbone"] == "vgg19_fcn" and config["params"]["trainable"] == 82_947_658


def test_early_stopping_counts_validations_without_a_better_nme():
    from flzoo.train.loop import record_validation

    state = {"best_val_nme": None, "best_step": None, "bad_validations": 0, "finished": None}
    improved = [record_validation(state, (i + 1) * 10, v, patience=2) for i, v in enumerate([0.5, 0.4, 0.45, 0.39])]
    assert improved == [True, True, False, True] and state["finished"] is None
    assert record_validation(state, 50, 0.39, patience=2) is False  # equal is not better
    assert state["finished"] is None
    record_validation(state, 60, 0.6, patience=2)
    assert state["finished"] == "early_stopping" and (state["best_val_nme"], state["best_step"]) == (0.39, 40)
    never = {"best_val_nme": 0.1, "best_step": 1, "bad_validations": 0, "finished": None}
    for step in range(5):
        record_validation(never, step, 0.2, patience=None)
    assert never["finished"] is None and never["bad_validations"] == 5
