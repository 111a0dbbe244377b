"""Resumable checkpoints: write into a hidden temporary folder, then rename.

A checkpoint is a folder ``checkpoints/step_00001000/`` holding
- ``state.safetensors``: every model variable (weights, batch-norm statistics, dropout seed-generator states) as
  ``model/00012`` and every optimizer variable (Adam moments, iteration counters; all optimizers of an
  adversarial model) as ``optimizer/00003``, in the deterministic order Keras lists them for a given build;
- ``state.json``: step, early-stopping state, running loss sums, elapsed time, the data position and RNG states.

``rename`` of a complete folder is atomic on POSIX, so a process killed mid-write leaves only a ``.tmp-*`` folder,
which is ignored and swept on the next save; a folder named ``step_*`` is always complete.
"""

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np

PREFIX = "step_"


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


def latest(folder):
    found = list_checkpoints(folder)
    return found[-1] if found else None


def read_state(path):
    return json.loads((Path(path) / "state.json").read_text())


def load(path, model):
    """Load checkpoint ``path`` into ``model`` (and its built optimizers); restore RNG states; return the state."""
    from safetensors.numpy import load_file

    path = Path(path)
    state = read_state(path)
    tensors = load_file(str(path / "state.safetensors"))
    groups = {"model": list(model.variables), "optimizer": optimizer_variables(model)}
    for group, variables in groups.items():
        stored = sorted(k for k in tensors if k.startswith(group + "/"))
        if len(stored) != len(variables):
            raise ValueError(f"checkpoint {path} holds {len(stored)} {group} variables but the model built from "
                             f"the recipe has {len(variables)}; expected the same model and optimizer")
        for i, v in enumerate(variables):
            value = tensors[f"{group}/{i:05d}"]
            if tuple(value.shape) != tuple(v.shape):
                raise ValueError(f"checkpoint {path}: {group} variable {i} ({v.path}) has shape {value.shape}, "
                                 f"the model expects {tuple(v.shape)}")
            v.assign(value)
    set_rng_state(state["rng"])
    return state
