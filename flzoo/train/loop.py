"""The training run: data, model, training segments, validation, early stopping, checkpoints, logs.

Training advances in segments: each covers the steps up to the next event (validation, checkpoint or the end),
so validation and checkpointing happen between segments, where every backend (JAX included) has its state in
the model's variables. Global step ``s`` is ``(epoch, index) = divmod(s, steps per epoch)`` of the training
``FaceBatches``, whose batches are a pure function of ``(seed, epoch, index)``: a resumed run feeds exactly the
batches an uninterrupted run would.

Keras must be imported by the caller's choice of backend; this module imports it inside functions.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

from flzoo.metrics import nme
from flzoo.paths import write_atomic
from flzoo.train import checkpoint, run_folder
from flzoo.train import recipe as recipes
from flzoo.train.checkpoint import RunError


def _step_range_class():
    import keras

    class StepRange(keras.utils.PyDataset):
        """Global steps ``[start, stop)`` of an endless sequence of epochs of ``batches``.

        ``workers`` threads (``train.data_workers``, default one) build the next batches while the model trains
        on this one (the crops and targets cost ~15% of a lite step; OpenCV and NumPy release the GIL). Batches
        are pure functions of the step and Keras's enqueuer keeps their order, so the data stay exactly those
        of a run without the threads."""

        def __init__(self, batches, start, stop, workers=1):
            super().__init__(workers=workers, use_multiprocessing=False)
            self.batches, self.start, self.stop = batches, start, stop

        def __len__(self):
            return self.stop - self.start

        def __getitem__(self, i):
            return batch_of_step(self.batches, self.start + i)

    return StepRange


def batch_of_step(batches, step):
    """The training batch of global step ``step``: ``(epoch, index) = divmod(step, steps per epoch)``."""
    epoch, index = divmod(step, len(batches))
    return batches.batch(index, epoch)


def _batches_ahead(batches, start, stop, workers=1):
    """The training batches of global steps ``[start, stop)`` in order, each built on one of ``workers`` threads
    while the model trains on the previous ones (the crops and targets cost ~5-15% of a step; OpenCV and NumPy
    release the GIL). The threads never change the data: a batch is a function of its step alone."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        ahead = deque()
        for step in range(start, stop):
            ahead.append(pool.submit(batch_of_step, batches, step))
            if len(ahead) > workers:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()


def train_segment(model, batches, start, stop, workers, progress, distributed=False):
    """Train global steps ``[start, stop)``; returns each logged loss term summed over those steps.

    One ``train_on_batch`` per step: ``fit`` over a ``PyDataset`` feeds TensorFlow through a ``py_function``,
    which ran the MobileNetV2 pwc at 22.5 img/s where this loop runs it at 60 (docs/training.md, "Throughput").
    A data-parallel run goes through ``fit``, which splits each batch across the devices."""
    if distributed:
        history = model.fit(_step_range_class()(batches, start, stop, workers), epochs=1, verbose=0,
                            shuffle=False, callbacks=[progress.callback()])
        return {name: float(values[-1]) * (stop - start) for name, values in history.history.items()}  # means
    sums = {}
    for x, y in _batches_ahead(batches, start, stop, workers):
        logs = model.train_on_batch(x, y, return_dict=True)
        for name, value in logs.items():
            sums[name] = sums.get(name, 0.0) + float(value)
        progress.advance(logs)
    return sums


def _write_json(path, value):
    write_atomic(path, json.dumps(value, indent=2) + "\n")


# ------------------------------------------------------------------ data


def load_faces(recipe, data_root, skip_bad=False, log=print):
    """``(train, val, skipped)``: the recipe's training subsets, split by photo (validation never sees a test
    set), and how many faces ``skip_bad`` left out.

    Every file of those subsets is checked first: bad ones stop the run before any heavy work, listed all at
    once, or with ``skip_bad`` are left out and listed in the log. A packed folder (``flzoo.data.packed``, made
    by tools/gpu_prepare.py from checked faces) is read as it is."""
    from flzoo.data import packed, split_train_val
    from flzoo.data.check import BadDataError, checked_faces

    data = recipe["data"]
    if packed.is_packed(data_root):
        try:
            present = packed.read_index(data_root)["subsets"]
            found, skipped = packed.read(data_root, [s for s in data["subsets"] if s in present]), []
        except ValueError as err:
            raise RunError(str(err)) from None
    else:
        try:
            found, skipped = checked_faces(data_root, data["subsets"], skip_bad)
        except BadDataError as err:
            raise RunError(str(err)) from None
    for line in skipped:
        log(f"--skip-bad: left out {line}")
    missing = [s for s in data["subsets"] if s not in found]
    if missing:
        raise RunError(f"data root {data_root}: subset(s) {missing} not found (data.subsets asks for "
                       f"{data['subsets']}; present: {sorted(found) or 'none'})")
    faces = [f for s in data["subsets"] for f in found[s]]
    train, val = split_train_val(faces, data["val_fraction"], seed=recipe["seed"])
    if data["max_faces"]:
        train = train[:data["max_faces"]]
    if data["max_val_faces"]:
        val = val[:data["max_val_faces"]]
    if len(train) < recipe["train"]["batch_size"]:
        raise RunError(f"{len(train)} training faces are fewer than train.batch_size = "
                       f"{recipe['train']['batch_size']}; raise data.max_faces or lower the batch size")
    if not val:
        raise RunError(f"data.val_fraction = {data['val_fraction']} left no validation faces; raise it")
    return train, val, len(skipped)


# ------------------------------------------------------------------ devices, model


def setup_distribution(recipe):
    """Switch on data-parallel training when the recipe asks; returns ``(scope factory, device count)``.

    JAX: ``keras.distribution.DataParallel`` over the local devices (set before the model is built, so every
    variable is created replicated and every batch is sharded). TensorFlow: ``tf.distribute.MirroredStrategy``;
    the model is built and compiled in its scope and ``fit`` splits each batch across replicas."""
    import contextlib

    import keras

    dist = recipe["distribute"]
    if not dist["enabled"]:
        return contextlib.nullcontext, 1
    backend = keras.backend.backend()
    wanted = dist["devices"]
    if backend == "jax":
        devices = keras.distribution.list_devices()
        if wanted:
            if wanted > len(devices):
                raise RunError(f"distribute.devices = {wanted} but JAX sees {len(devices)} device(s): {devices}")
            devices = devices[:wanted]
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        scope, count = contextlib.nullcontext, len(devices)
    elif backend == "tensorflow":
        import tensorflow as tf

        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
                  [d.name for d in tf.config.list_logical_devices("CPU")]
        if wanted:
            if wanted > len(devices):
                raise RunError(f"distribute.devices = {wanted} but TensorFlow sees {len(devices)} device(s): "
                               f"{devices}")
            devices = devices[:wanted]
        strategy = tf.distribute.MirroredStrategy(devices)
        scope, count = strategy.scope, strategy.num_replicas_in_sync
    else:
        raise RunError(f"distribute.enabled = true is supported on the jax and tensorflow backends, not {backend!r}; "
                       f"use --backend jax or --backend tensorflow, or set distribute.enabled=false")
    if recipe["train"]["batch_size"] % count:
        raise RunError(f"train.batch_size = {recipe['train']['batch_size']} does not split over {count} devices; "
                       f"expected a multiple of {count}")
    return scope, count


def make_optimizer(recipe, updates_per_step=1):
    """``updates_per_step``: optimizer updates in one training step (the adversarial detector makes two)."""
    import keras

    t = recipe["train"]
    lr = t["learning_rate"]
    if t["lr_schedule"] == "cosine":
        # A function of the optimizer's own update count, which checkpoints restore: resuming keeps the schedule.
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=t["max_steps"] * updates_per_step, alpha=0.01)
    if t["optimizer"] == "adam":
        return keras.optimizers.Adam(lr)
    if t["optimizer"] == "adamw":
        return keras.optimizers.AdamW(lr)
    return keras.optimizers.SGD(lr, momentum=0.9)


def jit_setting(recipe):
    import keras

    jit = recipe["train"]["jit_compile"]
    if recipe["train"]["run_eagerly"]:
        return False
    if jit == "auto":  # XLA makes TF training ~4x slower on CPU (docs/training.md); JAX needs jit to be usable
        return keras.backend.backend() == "jax"
    return jit


def build_model(recipe):
    import keras

    from flzoo.models import build

    m = recipe["model"]
    keras.utils.set_random_seed(recipe["seed"])
    # Set on every build (also float32), so one process's runs never inherit another's policy.
    keras.config.set_dtype_policy(recipe["train"].get("precision", "float32"))
    options = {"jit_compile": jit_setting(recipe), "run_eagerly": recipe["train"]["run_eagerly"]}
    try:
        model = build(m["variant"], m["backbone"], m["input_size"], **m["options"])
        if model.discriminator is None:
            model.compile(optimizer=make_optimizer(recipe), **options)
        else:  # each optimizer's schedule counts its own updates: det_steps and disc_steps per training step
            model.compile(optimizer=make_optimizer(recipe, model.det_steps),
                          disc_optimizer=make_optimizer(recipe, model.disc_steps), **options)
    except (TypeError, ValueError) as err:
        raise RunError(f"model section (variant={m['variant']!r}, backbone={m['backbone']!r}, "
                       f"input_size={m['input_size']!r}, options={m['options']!r}): {err}") from None
    return model


# ------------------------------------------------------------------ validation, overlays


def crop_protocol(recipe):
    """The recipe's crop protocol, which ``best/config.json`` records for inference (field ``crop``)."""
    from flzoo.data.crop import CropProtocol

    return CropProtocol(recipe["data"]["crop_scale"], recipe["data"]["crop_centre"])


def validate(model, batches, batch_size):
    """``(per-face NME array, first predictions)`` over the validation batches (no augmentation).

    The last batch is padded to the full batch size so every call has one shape (no recompiling, and a batch
    that splits evenly across devices)."""
    errors, preds = [], []
    for i in range(len(batches)):
        x, y = batches[i]
        n = len(x)
        if n < batch_size:
            x = np.concatenate([x, np.repeat(x[-1:], batch_size - n, axis=0)])
        p = np.asarray(model.predict_points(x, batch_size=len(x)))[:n]
        errors.append(nme(p, y["points"]))
        preds.append(p)
    return np.concatenate(errors), np.concatenate(preds)


def write_overlays(folder, batches, preds, count, step, val_nme):
    """Draw ground truth (green) and prediction (red) on the first ``count`` validation crops."""
    from flzoo.drawing import draw_comparison, encode

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    done = 0
    for i in range(len(batches)):
        x, y = batches[i]
        for crop, gt in zip(x, y["points"]):
            if done >= count:
                return
            picture = draw_comparison(crop, gt, preds[done], f"step {step} nme {nme(preds[done], gt):.4f}")
            write_atomic(folder / f"val_{done:02d}.png", encode(picture, ".png"))
            done += 1


# ------------------------------------------------------------------ the run


class _Progress:
    """Progress over all steps, advanced by a Keras callback: a tqdm bar on a terminal; in a pipe or a log file
    a plain line every ``every`` steps (a bar there would write thousands of carriage-return updates)."""

    def __init__(self, total, initial, enabled, every=100):
        from tqdm import tqdm

        self.on_terminal = enabled and sys.stderr.isatty()
        self.lines = enabled and not self.on_terminal
        self.total, self.every, self.step, self.started = total, every, initial, (initial, time.time())
        self.bar = tqdm(total=total, initial=initial, unit="step", disable=not self.on_terminal, file=sys.stderr,
                        dynamic_ncols=True, mininterval=1.0)

    def advance(self, logs):
        self.step += 1
        self.bar.update(1)
        loss = f"{float(logs['loss']):.4g}" if logs and "loss" in logs else "?"
        if self.on_terminal and self.step % 10 == 0:
            self.bar.set_postfix(loss=loss, refresh=False)
        if self.lines and (self.step % self.every == 0 or self.step == self.total):
            steps, seconds = self.step - self.started[0], time.time() - self.started[1]
            print(f"step {self.step}/{self.total} loss {loss} ({steps / max(seconds, 1e-9):.2f} steps/s)",
                  file=sys.stderr, flush=True)

    def callback(self):
        import keras

        progress = self

        class _Cb(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                progress.advance(logs)

        return _Cb()


def train(recipe, out, data_root, resume=False, progress=True, log=print, skip_bad=False):
    """Run (or resume) the training described by a resolved ``recipe``; returns the metrics dict."""
    import keras

    began = time.time()
    out = Path(out)
    t = recipe["train"]
    train_faces, val_faces, skipped_faces = load_faces(recipe, data_root, skip_bad, log)
    if recipe["model"]["pretrained"]:  # a missing weights package fails here, before Keras is imported
        from flzoo.models.pretrained import PretrainedError, source_file

        try:
            source_file(recipe["model"]["backbone"])
        except PretrainedError as err:
            raise RunError(f"model.pretrained: {err}") from None
    scope, n_devices = setup_distribution(recipe)
    with scope():
        model = build_model(recipe)
    recipe["model"]["input_size"] = int(model.input_size)  # the resolved size goes into recipe.yaml
    run_folder.check_out(out, recipe, resume)

    from flzoo.data import AugmentConfig, FaceBatches

    a = recipe["augment"]
    augment = AugmentConfig(rotation=a["rotation"], scale=(a["scale_min"], a["scale_max"]), flip=a["flip"],
                            photometric=a["photometric"], shift=a["shift"]) if a["enabled"] else None
    size, bs = model.input_size, t["batch_size"]
    from flzoo.data import packed

    if packed.is_packed(data_root):  # a window larger than the packed one would show black where it was cut
        try:
            packed.check_fits(data_root, size, augment, recipe["data"]["subsets"])
        except ValueError as err:
            raise RunError(str(err)) from None
    crop = crop_protocol(recipe)
    train_batches = FaceBatches(train_faces, size, bs, target=model.target_spec, augment=augment, shuffle=True,
                                seed=recipe["seed"], drop_remainder=True, crop=crop)
    val_batches = FaceBatches(val_faces, size, bs, target=model.target_spec, augment=None, shuffle=False,
                              seed=recipe["seed"], crop=crop)
    data_id = {"train_faces": len(train_faces), "val_faces": len(val_faces),
               "steps_per_epoch": len(train_batches),
               "first_faces": [str(f.image_path.name) for f in train_faces[:3]]}

    out.mkdir(parents=True, exist_ok=True)
    run_folder.recover_best(out)
    write_atomic(out / "recipe.yaml", recipes.dump(recipe))

    state = {"best_val_nme": None, "best_step": None, "bad_validations": 0, "loss_sums": {}, "loss_steps": 0,
             "train_s": 0.0, "elapsed_s": 0.0, "finished": None, "steps_per_epoch": len(train_batches),
             "train_faces": len(train_faces), "val_faces": len(val_faces), "pretrained": None,
             "skipped_faces": skipped_faces}
    step = 0
    with scope():
        checkpoint.build_optimizers(model)
        # A damaged newest checkpoint (half-written by a dying disk, truncated by a copy) is skipped, saying why.
        ckpt, loaded = checkpoint.load_newest(out / "checkpoints", model, require=("data",), log=log)
        if ckpt is not None:
            if loaded["data"] != data_id:
                raise RunError(f"--resume: checkpoint {ckpt} was made on different data ({loaded['data']}); "
                               f"now {data_id}; expected the same data root, subsets and limits")
            step = loaded["step"]
            state = {k: loaded.get(k, v) for k, v in state.items()}
            run_folder.truncate_log(out / "log.jsonl", step, log)
            log(f"resuming {out} from step {step} ({ckpt.name})")
        else:
            run_folder.truncate_log(out / "log.jsonl", 0, log)  # a run killed before its first checkpoint starts over
            if resume:
                log(f"--resume: no checkpoint in {out / 'checkpoints'}; starting from step 0")
            if recipe["model"]["pretrained"]:
                state["pretrained"] = _load_pretrained(model, recipe["model"]["backbone"])
                log(f"{recipe['name']}: backbone from ImageNet weights {state['pretrained']['source']} "
                    f"(sha256 {state['pretrained']['sha256'][:16]}..., {state['pretrained']['tensors']} tensors)")
    if state["finished"]:
        log(f"{out}: the run already finished at step {step} ({state['finished']})")
        return json.loads((out / "metrics.json").read_text())

    log(f"{recipe['name']}: {keras.backend.backend()} backend, {n_devices} device(s), {len(train_faces)} train / "
        f"{len(val_faces)} val faces, input {size}, batch {bs}, steps {step}..{t['max_steps']}")
    bar = _Progress(t["max_steps"], step, progress)
    started = time.time() - state["elapsed_s"]
    # train.max_seconds: the process's first two segments are short probes (PROBE_STEPS; the first includes the
    # compile), which measure the rate; a segment that would end past the deadline is cut short to the steps
    # that fit at the previous segment's rate (then measured again), and when none fits the run stops with a
    # checkpoint, unfinished, so that --resume continues it. Cut segments end between validations: the data
    # and schedule do not change.
    deadline = began + t["max_seconds"] if t.get("max_seconds") else None
    rate, overhead, stopped, saved_at, probes, timed = None, 0.0, None, step, 0, [0, 0.0]
    try:
        while step < t["max_steps"] and not state["finished"]:
            stop = min(t["max_steps"], (step // t["val_every"] + 1) * t["val_every"],
                       (step // t["checkpoint_every"] + 1) * t["checkpoint_every"])
            if deadline is not None and probes < len(PROBE_STEPS):
                stop = min(stop, step + PROBE_STEPS[probes])
            if deadline is not None and rate is not None:
                fits = int((deadline - time.time() - overhead) / rate)
                if fits < 1:
                    stop, stopped = step, "max_seconds"
                stop = min(stop, step + max(0, fits))
            if stop > step:
                t0 = time.time()
                sums = train_segment(model, train_batches, step, stop, t.get("data_workers", 1), bar,
                                      distributed=recipe["distribute"]["enabled"])
                state["train_s"] += time.time() - t0
                if rate is not None:  # after this process's first segment (the compile): its training rate
                    timed = [timed[0] + stop - step, timed[1] + time.time() - t0]
                rate = (time.time() - t0) / (stop - step)
                if deadline is not None:
                    probes += 1
                    if probes == len(PROBE_STEPS):
                        log(f"{recipe['name']}: {bs / rate:.1f} images/s over steps {step}..{stop} (after the "
                            f"compile); {t['max_seconds']} s allow about {int(max(0, deadline - time.time()) / rate)} "
                            f"more steps")
                for name, total in sums.items():
                    state["loss_sums"][name] = state["loss_sums"].get(name, 0.0) + total
                state["loss_steps"] += stop - step
                step = stop
            t1 = time.time()
            if stopped:
                if saved_at != step:
                    state["elapsed_s"] = time.time() - started
                    checkpoint.save(out / "checkpoints", step, model, dict(state, data=data_id),
                                    keep=t["keep_checkpoints"])
                log(f"{recipe['name']}: train.max_seconds = {t['max_seconds']} reached: stopped at step {step} "
                    f"with a checkpoint (--resume continues)")
                break
            if step % t["val_every"] == 0 or step == t["max_steps"]:
                _validate_and_log(model, recipe, out, step, state, val_batches, started, n_devices)
            if step == t["max_steps"] and not state["finished"]:
                state["finished"] = "max_steps"
            if step % t["checkpoint_every"] == 0 or state["finished"]:
                state["elapsed_s"] = time.time() - started
                checkpoint.save(out / "checkpoints", step, model, dict(state, data=data_id),
                                keep=t["keep_checkpoints"])
                saved_at = step
            overhead = max(overhead, time.time() - t1)  # validation + checkpoint: kept free before the deadline
    finally:
        bar.bar.close()
    metrics = _metrics(recipe, state, step, n_devices, started)
    if stopped:
        metrics["stopped"] = stopped
    if timed[0]:
        metrics["images_per_s_after_compile"] = round(timed[0] * bs / timed[1], 2)
    _write_json(out / "metrics.json", metrics)
    best = "none yet" if state["best_val_nme"] is None else f"{state['best_val_nme']:.4f} at step {state['best_step']}"
    log(f"{recipe['name']}: {state['finished'] or stopped} at step {step}; best val NME {best} -> {out / 'best'}")
    return metrics


PROBE_STEPS = (20, 50)  # train.max_seconds: the first two segments of a process, to measure its rate


def _load_pretrained(model, backbone):
    from flzoo.models.pretrained import PretrainedError, load_imagenet

    try:
        info = load_imagenet(model.network, backbone)
    except PretrainedError as err:
        raise RunError(f"model.pretrained: {err}") from None
    return {k: info[k] for k in ("source", "sha256", "tensors")}


def record_validation(state, step, val_nme, patience):
    """Early-stopping bookkeeping: returns True when ``val_nme`` is a new best; sets ``state["finished"]`` after
    ``patience`` validations in a row without improvement (None: never)."""
    if state["best_val_nme"] is None or val_nme < state["best_val_nme"]:
        state["best_val_nme"], state["best_step"], state["bad_validations"] = val_nme, step, 0
        return True
    state["bad_validations"] += 1
    if patience and state["bad_validations"] >= patience:
        state["finished"] = "early_stopping"
    return False


def _validate_and_log(model, recipe, out, step, state, val_batches, started, n_devices):
    t0 = time.time()
    errors, preds = validate(model, val_batches, recipe["train"]["batch_size"])
    val_nme = float(errors.mean())
    if record_validation(state, step, val_nme, recipe["train"]["patience"]):
        run_folder.save_best(model, out, {"metrics": {"val_nme": val_nme, "step": step},
                                          "crop": crop_protocol(recipe).to_config(),
                                          "training": {"recipe": recipe["name"], "run": str(out.resolve())}})
        if recipe["output"]["overlays"]:
            write_overlays(out / "overlays", val_batches, preds, recipe["output"]["overlays"], step, val_nme)
    losses = {k: v / max(1, state["loss_steps"]) for k, v in state["loss_sums"].items()}
    line = {"step": step, "epoch": round(step / state["steps_per_epoch"], 3),
            "losses": losses, "val_nme": val_nme, "best_val_nme": state["best_val_nme"],
            "best_step": state["best_step"], "time_s": round(time.time() - started, 2),
            "val_s": round(time.time() - t0, 2), "images_per_s": round(_ips(recipe, state, step), 2)}
    with open(out / "log.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")
    state["loss_sums"], state["loss_steps"] = {}, 0
    _write_json(out / "metrics.json", _metrics(recipe, state, step, n_devices, started))


def _ips(recipe, state, step):
    return step * recipe["train"]["batch_size"] / max(state["train_s"], 1e-9)


def _metrics(recipe, state, step, n_devices, started):
    import keras

    out = {"name": recipe["name"], "variant": recipe["model"]["variant"], "backbone": recipe["model"]["backbone"],
           "input_size": recipe["model"]["input_size"], "backend": keras.backend.backend(), "devices": n_devices,
           "step": step, "finished": state["finished"], "best_val_nme": state["best_val_nme"],
           "best_step": state["best_step"], "validation": "val_nme = mean point error / distance(points 36, 45) "
           "on the validation split of the training subsets", "train_images_per_s": round(_ips(recipe, state, step), 2),
           "wall_s": round(time.time() - started, 1), "train_faces": state["train_faces"],
           "val_faces": state["val_faces"], "skipped_faces": state["skipped_faces"],
           "pretrained": state["pretrained"]}
    return out
