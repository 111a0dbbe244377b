"""A training run's folder: ``recipe.yaml``, ``log.jsonl``, ``metrics.json``, ``checkpoints/``, ``best/``.

Whatever a killed process leaves behind is put right here before a run continues: a half-swapped ``best/``,
log lines written after the checkpoint being resumed, a half-written last log line. And a folder that holds a
run is never trained over without ``--resume``.
"""

import json
import os
import shutil
from pathlib import Path

from flzoo.paths import write_atomic
from flzoo.train import checkpoint
from flzoo.train import recipe as recipes
from flzoo.train.checkpoint import RunError


def save_best(model, out, extra):
    """Replace ``best/`` as a whole: write a temporary folder, then swap it in."""
    from flzoo.weights import save_model

    tmp, best, old = out / ".best-tmp", out / "best", out / ".best-old"
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(model, tmp, extra=extra)
    if best.exists():
        os.rename(best, old)
    os.rename(tmp, best)
    shutil.rmtree(old, ignore_errors=True)


def recover_best(out):
    """A kill between the two renames of ``save_best`` leaves only ``.best-old``: put it back."""
    if not (out / "best").exists() and (out / ".best-old").exists():
        os.rename(out / ".best-old", out / "best")


def check_out(out, recipe, resume):
    """Check the run folder against ``--resume`` before any heavy work; returns the newest checkpoint whose
    ``state.json`` reads cleanly (or None). Refuses an existing run (a folder with a checkpoint) without
    ``--resume`` and a resume with a different recipe; a start that failed before its first checkpoint leaves
    nothing to resume, so it never blocks the next try."""
    import yaml

    out = Path(out)
    saved_path = out / "recipe.yaml"
    found = checkpoint.list_checkpoints(out / "checkpoints")
    if found:
        if not resume:
            raise RunError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
        if saved_path.exists():
            saved = yaml.safe_load(saved_path.read_text())
            mine = recipes.nest(dict(recipes.flatten(recipe)))
            if mine["model"]["input_size"] is None:  # null = the variant's default, resolved in the saved copy
                mine["model"]["input_size"] = saved.get("model", {}).get("input_size")
            diff = recipes.differences(saved, mine)
            if diff:
                raise RunError(f"--resume: the recipe differs from the run's {saved_path} in "
                               f"{', '.join(diff)}; resume with the same recipe and --set values")
    skipped = []
    ckpt = checkpoint.latest(out / "checkpoints", log=skipped.append)
    if found and ckpt is None:  # fail before Keras is imported; a damaged state.safetensors shows on loading
        raise RunError(f"--resume: no readable checkpoint in {out / 'checkpoints'} ({'; '.join(skipped)}); "
                       f"expected at least one intact step_* folder. Remove the damaged folders to restart the "
                       f"run from step 0")
    return ckpt


def finished_state(ckpt):
    """The last checkpoint's ``finished`` reason (``max_steps`` / ``early_stopping``) or None."""
    return checkpoint.read_state(ckpt).get("finished") if ckpt is not None else None


def truncate_log(path, step, log=print):
    """Drop log lines written after the checkpoint we resume from (they will be written again), and a last line
    half-written by a killed process. Any other unreadable line is a ``RunError`` naming the file and line."""
    if not path.exists():
        return
    lines = [(n, line) for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1) if line.strip()]
    keep = []
    for i, (n, line) in enumerate(lines):
        try:
            entry = json.loads(line)
            entry_step = entry["step"]
            if not isinstance(entry_step, (int, float)) or isinstance(entry_step, bool):
                raise TypeError(f"'step' is {entry_step!r}")
        except (json.JSONDecodeError, TypeError, KeyError) as err:
            if i == len(lines) - 1:
                log(f"{path}: dropping the half-written last line {n} ({type(err).__name__}: {err})")
                break
            raise RunError(f"{path} line {n} is not a log entry ({type(err).__name__}: {err}); expected one JSON "
                           f"object with a 'step' per line; fix or delete that line") from None
        if entry_step <= step:
            keep.append(line)
    write_atomic(path, "".join(line + "\n" for line in keep))
