"""Resumable checkpoints: write into a hidden temporary folder, then rename.

A checkpoint is a folder ``checkpoints/step_00001000/`` holding
- ``state.safetensors``: every model variable (weights, batch-norm statistics, dropout seed-generator states) as
  ``model/00012`` and every optimizer variable (Adam moments, iteration counters; all optimizers of an
  adversarial model) as ``optimizer/00003``, in the deterministic order Keras lists them for a given build;
- ``state.json``: step, early-stopping state, running loss sums, elapsed time, the data position and RNG states.

``rename`` of a complete folder is atomic on POSIX, so a process killed mid-write leaves only a ``.tmp-*`` folder,
which is ignored and swept on the next save; a folder named ``step_*`` is complete unless the disk damaged it.
A damaged one (unreadable ``state.json``, truncated ``state.safetensors``, missing fields) raises ``RunError``
naming the file and the field; ``load_newest`` then falls back to the newest checkpoint that loads cleanly.
"""

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np

PREFIX = "step_"


class RunError(ValueError):
    """A run that cannot start or continue; the message names the folder / key / value and what was expected.

    Defined here (the lowest module of the run) so that checkpoint errors are the same class the CLI reports;
    ``flzoo.train.loop.RunError`` is this class."""


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def optimizers_of(model):
    """The optimizer(s) whose state must survive a restart (``model.optimizer`` plus a separate one, if any)."""
    found = []
    for name in ("optimizer", "det_optimizer", "disc_optimizer"):
        try:
            opt = getattr(model, name, None)
        except Exception:  # e.g. LandmarkModel.disc_optimizer of a model without a discriminator
            opt = None
        if opt is not None and all(opt is not o for o in found):
            found.append(opt)
    return found


def optimizer_variables(model):
    out, seen = [], set()
    for opt in optimizers_of(model):
        for v in opt.variables:
            if id(v) not in seen:
                out.append(v)
                seen.add(id(v))
    return out


def build_optimizers(model):
    """Create optimizer variables before the first step so that a checkpoint can be loaded into them."""
    for opt in optimizers_of(model):
        if not opt.built:
            opt.build(model.trainable_variables)


def rng_state():
    """Global Python and NumPy RNG states (model randomness lives in seed-generator variables, saved as weights)."""
    py = random.getstate()
    np_state = np.random.get_state(legacy=False)
    np_state["state"] = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in np_state["state"].items()}
    return {"python": [py[0], list(py[1]), py[2]], "numpy": np_state}


def set_rng_state(state):
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np_state = dict(state["numpy"])
    np_state["state"] = {k: (np.asarray(v, dtype=np.uint64) if isinstance(v, list) else v)
                         for k, v in np_state["state"].items()}
    np.random.set_state(np_state)


def _arrays(model):
    from keras import ops

    tensors = {}
    for i, v in enumerate(model.variables):
        tensors[f"model/{i:05d}"] = np.array(ops.convert_to_numpy(v.value), order="C")  # keeps 0-d shapes
    for i, v in enumerate(optimizer_variables(model)):
        tensors[f"optimizer/{i:05d}"] = np.array(ops.convert_to_numpy(v.value), order="C")  # keeps 0-d shapes
    return tensors


def save(folder, step, model, state, keep=2):
    """Write checkpoint ``step`` under ``folder``; keep only the ``keep`` newest. Returns the new folder."""
    from safetensors.numpy import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(".tmp-*"):  # left by a process killed mid-write
        shutil.rmtree(stale, ignore_errors=True)
    final = folder / f"{PREFIX}{step:08d}"
    tmp = folder / f".tmp-{PREFIX}{step:08d}-{os.getpid()}"
    tmp.mkdir()
    tensors = _arrays(model)
    save_file(tensors, str(tmp / "state.safetensors"))
    full_state = dict(state, step=int(step), rng=rng_state(),
                      variables={"model": [v.path for v in model.variables],
                                 "optimizer": [v.path for v in optimizer_variables(model)]})
    with open(tmp / "state.json", "w") as f:
        json.dump(full_state, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    with open(tmp / "state.safetensors", "rb+") as f:
        os.fsync(f.fileno())
    _fsync_dir(tmp)
    if final.exists():  # the same step saved again after a resume: the new copy is identical in content
        old = folder / f".tmp-old-{final.name}-{os.getpid()}"
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)
    _fsync_dir(folder)
    for stale in list_checkpoints(folder)[:-keep]:
        shutil.rmtree(stale, ignore_errors=True)
    return final


def list_checkpoints(folder):
    """Complete checkpoints under ``folder``, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX):].isdigit()
             and (p / "state.json").is_file()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def latest(folder, log=None):
    """The newest checkpoint under ``folder`` whose ``state.json`` reads cleanly (None: none does). ``log``, if
    given, is called with a message for each newer checkpoint skipped. (A damaged ``state.safetensors`` shows
    only on loading: see ``load_newest``.)"""
    for path in reversed(list_checkpoints(folder)):
        try:
            read_state(path)
        except RunError as err:
            if log is not None:
                log(f"skipping checkpoint {path}: {err}")
            continue
        return path
    return None


def read_state(path):
    """The checkpoint's ``state.json`` as a dict with an integer ``step``; ``RunError`` if it is unreadable."""
    file = Path(path) / "state.json"
    try:
        state = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunError(f"checkpoint file {file} is unreadable ({type(err).__name__}: {err}); expected the JSON "
                       f"written by checkpoint.save") from None
    if not isinstance(state, dict):
        raise RunError(f"checkpoint file {file} holds a {type(state).__name__}; expected a JSON object")
    if not isinstance(state.get("step"), int) or isinstance(state.get("step"), bool):
        raise RunError(f"checkpoint file {file}: field 'step' is {state.get('step', 'missing')!r}; "
                       f"expected an integer")
    return state


def _read_tensors(path):
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    file = Path(path) / "state.safetensors"
    try:
        return load_file(str(file))
    except (OSError, SafetensorError, ValueError) as err:
        raise RunError(f"checkpoint file {file} is unreadable ({type(err).__name__}: {err}); "
                       f"expected the safetensors file written by checkpoint.save") from None


def load(path, model, require=()):
    """Load checkpoint ``path`` into ``model`` (and its built optimizers); restore RNG states; return the state.

    All or nothing: every file, field (``rng`` plus the names in ``require``), variable count and shape is
    checked before anything is assigned. A damaged or mismatched checkpoint raises ``RunError`` naming the file
    and the field, and leaves the model and the RNG states as they were."""
    path = Path(path)
    state = read_state(path)
    json_file = path / "state.json"
    for field in ("rng", *require):
        if field not in state:
            raise RunError(f"checkpoint file {json_file} has no field {field!r}; expected the state written by "
                           f"checkpoint.save")
    tensors = _read_tensors(path)
    file = path / "state.safetensors"
    groups = {"model": list(model.variables), "optimizer": optimizer_variables(model)}
    for group, variables in groups.items():
        stored = {k for k in tensors if k.startswith(group + "/")}
        if len(stored) != len(variables):
            raise RunError(f"checkpoint {file} holds {len(stored)} {group} variables but the model built from "
                           f"the recipe has {len(variables)}; expected the same model and optimizer")
        for i, v in enumerate(variables):
            key = f"{group}/{i:05d}"
            if key not in tensors:
                raise RunError(f"checkpoint {file} has no tensor {key!r} ({v.path}); expected {group}/00000.."
                               f"{group}/{len(variables) - 1:05d}")
            if tuple(tensors[key].shape) != tuple(v.shape):
                raise RunError(f"checkpoint {file}: {group} variable {i} ({v.path}) has shape "
                               f"{tensors[key].shape}, the model expects {tuple(v.shape)}")
    before = rng_state()
    try:
        set_rng_state(state["rng"])
    except (KeyError, IndexError, TypeError, ValueError) as err:
        set_rng_state(before)
        raise RunError(f"checkpoint file {json_file}: field 'rng' is malformed ({type(err).__name__}: {err}); "
                       f"expected the Python and NumPy RNG states written by checkpoint.save") from None
    for group, variables in groups.items():
        for i, v in enumerate(variables):
            v.assign(tensors[f"{group}/{i:05d}"])
    return state


def load_newest(folder, model, require=(), log=print):
    """Load the newest checkpoint under ``folder`` that loads cleanly; returns ``(path, state)``, or
    ``(None, None)`` when there is no checkpoint. Each newer, damaged one is skipped with a ``log`` message
    saying why; when checkpoints exist but none loads, ``RunError`` lists them with their reasons."""
    found = list_checkpoints(folder)
    reasons = []
    for path in reversed(found):
        try:
            return path, load(path, model, require)
        except RunError as err:
            log(f"skipping checkpoint {path}: {err}")
            reasons.append(f"{path.name}: {err}")
    if found:
        raise RunError(f"no readable checkpoint in {folder} (" + "; ".join(reasons) + "); expected at least one "
                       "intact step_* folder. Remove the damaged folders to restart the run from step 0")
    return None, None
