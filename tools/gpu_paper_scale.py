"""The device side of a paper-scale run (started by tools/gpu_paper_scale.sh, which installs the wheels first).

Trains RECIPE from the packed faces in ``.gpu/data`` (tools/gpu_prepare.py) for as long as the command's budget
allows (``train.max_seconds``: the run stops with a checkpoint, unfinished), evaluates ``best/`` on the packed
test faces (ground-truth crops, the paper's protocol), and writes what can come back into ``$OUT``:
``log.txt`` (everything printed), ``summary.json`` (the figures), ``records.tar.gz`` (recipe, log.jsonl,
metrics.json, overlays, best/config.json, the evaluation), and, when the newest checkpoint and ``best/`` fit
the return limits (8 files of 16 MiB, 64 MiB in all), ``resume.tar.part-NN`` to resume on a fresh machine.

Resuming: the run folder lives on the device machine (``--runs``, default /tmp/flzoo-gpu), so a call made while
the machine is still warm continues it; otherwise the ``resume.tar.part-*`` files of a previous ``$OUT``, put in
``.gpu/resume/`` and carried, are unpacked into it first. VGG19-FCN checkpoints (~1 GB with Adam) never fit the
return limits: for them only the warm machine resumes.

    OUT=/tmp/gpu-out GPU_INSTALL=0 bash tools/gpu_paper_scale.sh recipes/lite/hybrid.yaml --budget-s 120 \\
        --precision float32 --set data.max_faces=16 ...          # the CPU test (docs/training.md)
"""

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PART = 15 * 2**20        # one returned file (the limit is 16 MiB)
MAX_PARTS = 5            # log.txt, summary.json, records.tar.gz + these parts <= 8 files
RETURN_ROOM = 56 * 2**20  # of the 64 MiB that come back, keep room for the records


def say(*parts):
    print(*parts, flush=True)


def newest_checkpoint(run):
    from flzoo.train.checkpoint import list_checkpoints

    found = list_checkpoints(run / "checkpoints")
    return found[-1] if found else None


def restore(run, resume_dir):
    """Unpack ``resume.tar.part-*`` of a previous $OUT into ``run`` (when ``run`` holds no checkpoint)."""
    parts = sorted(resume_dir.glob("resume.tar.part-*")) if resume_dir.is_dir() else []
    if not parts:
        return False
    data = b"".join(p.read_bytes() for p in parts)
    run.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        tar.extractall(run, filter="data")
    say(f"restored {run} from {len(parts)} part(s) in {resume_dir} ({len(data) / 2**20:.1f} MiB): "
        f"{newest_checkpoint(run).name if newest_checkpoint(run) else 'no checkpoint'}")
    return True


def steady_rate(log_path, batch_size):
    """Images/s between consecutive validations (validation time left out), from log.jsonl; None if < 2 lines."""
    if not log_path.exists():
        return None
    lines = [json.loads(x) for x in log_path.read_text().splitlines() if x.strip()]
    rates = []
    for a, b in zip(lines, lines[1:]):
        seconds = (b["time_s"] - a["time_s"]) - b.get("val_s", 0.0)
        if seconds > 0 and b["step"] > a["step"]:
            rates.append((b["step"] - a["step"]) * batch_size / seconds)
    return rates[-1] if rates else None


def evaluate(run, data, subsets, out_dir, batch_size):
    import flzoo
    from flzoo.data import packed
    from flzoo.evaluate import evaluate_faces
    from flzoo.report import write_outputs

    faces = packed.read(data, subsets)
    landmarker = flzoo.load(str(run / "best"), detector=None, runtime="keras", flip=False)
    results = evaluate_faces(landmarker, faces, boxes="gt", batch_size=batch_size, model_name=str(run / "best"),
                             progress=False)
    index = packed.read_index(data)
    results.update(flip=False, runtime="keras", data=f"{data} (packed: {index['codec']}, quality "
                   f"{index['subsets'][subsets[0]]['quality']}, factor {index['subsets'][subsets[0]]['factor']})")
    write_outputs(results, out_dir)
    return results


def tar_bytes(run, names):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:") as tar:
        for name in names:
            if (run / name).exists():
                tar.add(run / name, arcname=name)
    return buf.getvalue()


def write_outputs(run, out, summary):
    """``records.tar.gz`` always; ``resume.tar.part-NN`` when the newest checkpoint + best/ fit."""
    records = [n for n in ("recipe.yaml", "log.jsonl", "metrics.json", "overlays", "best/config.json", "eval_gt")
               if (run / n).exists()]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in records:
            tar.add(run / name, arcname=name)
    (out / "records.tar.gz").write_bytes(buf.getvalue())
    summary["records_bytes"] = len(buf.getvalue())
    ckpt = newest_checkpoint(run)
    for old in out.glob("resume.tar.part-*"):
        old.unlink()
    if ckpt is None:
        summary["resume"] = "no checkpoint"
        return
    size = sum(p.stat().st_size for p in ckpt.rglob("*") if p.is_file())
    size += sum(p.stat().st_size for p in (run / "best").rglob("*") if p.is_file()) if (run / "best").exists() else 0
    summary["checkpoint_bytes"] = size
    if size > min(RETURN_ROOM, MAX_PARTS * PART) - len(buf.getvalue()):
        summary["resume"] = (f"checkpoint + best/ are {size / 2**20:.0f} MiB, over what comes back from $OUT "
                             f"({MAX_PARTS} files of {PART // 2**20} MiB): kept in {run} on this machine only "
                             f"(a call while it is warm resumes from it)")
        return
    data = tar_bytes(run, ["recipe.yaml", "log.jsonl", "metrics.json", "overlays", "best",
                           f"checkpoints/{ckpt.name}"])
    parts = [data[i:i + PART] for i in range(0, len(data), PART)]
    for i, part in enumerate(parts):
        (out / f"resume.tar.part-{i:02d}").write_bytes(part)
    summary["resume"] = (f"{len(parts)} part(s) resume.tar.part-* ({len(data) / 2**20:.1f} MiB, {ckpt.name}): "
                         f"put them in .gpu/resume/ and carry .gpu")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("recipe", type=Path)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="recipe override (flzoo-train --set); the same on every call of one run")
    ap.add_argument("--budget-s", type=float, default=float(os.environ.get("GPU_BUDGET_S", 570)),
                    help="seconds this whole command may take, counted from the shell script's start "
                         "[$GPU_BUDGET_S or 570, for timeout_s=600]")
    ap.add_argument("--eval-reserve-s", type=float, default=75.0,
                    help="seconds kept for the evaluation and the outputs after training [75]")
    ap.add_argument("--startup-s", type=float, default=25.0,
                    help="seconds the training process needs before its clock starts (imports) [25]")
    ap.add_argument("--precision", default="mixed_bfloat16", choices=("float32", "mixed_bfloat16"),
                    help="train.precision [mixed_bfloat16]; the same on every call of one run")
    ap.add_argument("--workers", type=int, default=max(1, min(12, (os.cpu_count() or 2) - 2)),
                    help="train.data_workers [cpu count - 2, at most 12]")
    ap.add_argument("--data", type=Path, default=REPO / ".gpu" / "data", help="packed faces [.gpu/data]")
    ap.add_argument("--resume-dir", type=Path, default=REPO / ".gpu" / "resume",
                    help="where a previous $OUT's resume.tar.part-* are [.gpu/resume]")
    ap.add_argument("--runs", type=Path, default=Path(os.environ.get("GPU_RUNS", "/tmp/flzoo-gpu")),
                    help="run folders on this machine [$GPU_RUNS or /tmp/flzoo-gpu]")
    ap.add_argument("--test-subsets", default="helen_test")
    ap.add_argument("--eval-batch", type=int, default=32)
    args = ap.parse_args(argv)

    t0 = float(os.environ.get("GPU_T0", time.time()))
    out = Path(os.environ.get("OUT") or "")
    if not os.environ.get("OUT"):
        raise SystemExit("set OUT: the folder whose files come back")
    out.mkdir(parents=True, exist_ok=True)

    from flzoo.data import packed
    from flzoo.train import recipe as recipes

    if not packed.is_packed(args.data):
        raise SystemExit(f"{args.data}: no packed faces (packed.json); run tools/gpu_prepare.py on the CPU first "
                         f"and carry .gpu")
    sets = [*args.overrides, f"train.precision={args.precision}"]
    recipe = recipes.load(args.recipe, sets)  # a bad recipe fails here, before anything heavy
    run = args.runs / recipe["name"]
    summary = {"recipe": str(args.recipe), "overrides": sets, "run": str(run), "device": os.environ.get("GPU_NAME"),
               "backend": os.environ.get("KERAS_BACKEND"), "packed": {k: v for k, v in packed.read_index(args.data)
                                                                      .items() if k != "subsets"}}
    if newest_checkpoint(run) is None:
        restore(run, args.resume_dir)
    before = newest_checkpoint(run)
    summary["resumed_from"] = before.name if before else None

    left = args.budget_s - (time.time() - t0) - args.eval_reserve_s - args.startup_s
    if left < 30:
        raise SystemExit(f"only {left:.0f} s left for training in a budget of {args.budget_s:.0f} s; raise "
                         f"--budget-s / GPU_BUDGET_S")
    cmd = [sys.executable, "-m", "flzoo.train.cli", str(args.recipe), "--data", str(args.data), "--out", str(run),
           "--resume", "--no-progress", *[a for s in sets for a in ("--set", s)],
           "--set", f"train.max_seconds={int(left)}", "--set", f"train.data_workers={args.workers}"]
    say(f"[{time.time() - t0:.0f} s] training {recipe['name']} for at most {left:.0f} s: {' '.join(cmd[1:])}")
    t_train = time.time()
    rc = subprocess.run(cmd, cwd=REPO).returncode
    summary["train_rc"] = rc
    summary["train_wall_s"] = round(time.time() - t_train, 1)
    metrics_path = run / "metrics.json"
    if metrics_path.exists():
        m = json.loads(metrics_path.read_text())
        summary.update({k: m.get(k) for k in ("step", "finished", "stopped", "best_val_nme", "best_step",
                                               "train_images_per_s", "images_per_s_after_compile", "train_faces",
                                               "val_faces")})
        rate = steady_rate(run / "log.jsonl", recipe["train"]["batch_size"])
        summary["steady_images_per_s"] = round(rate, 1) if rate else None  # between validations, in log.jsonl
        rate = m.get("images_per_s_after_compile") or rate
        if rate:
            steps = recipe["train"]["max_steps"]
            summary["max_steps_hours_at_rate"] = round(steps * recipe["train"]["batch_size"] / rate / 3600, 2)
    say(f"[{time.time() - t0:.0f} s] training exited with {rc}")

    subsets = [s.strip() for s in args.test_subsets.split(",") if s.strip()]
    write_outputs(run, out, summary)  # the training's records come back even if the evaluation overruns
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    if (run / "best" / "model.safetensors").exists():
        t_eval = time.time()
        try:
            results = evaluate(run, args.data, subsets, run / "eval_gt", args.eval_batch)
            summary["eval"] = results["summary"]
            summary["best_bytes"] = (run / "best" / "model.safetensors").stat().st_size
            say((run / "eval_gt" / "table.md").read_text())
        except Exception as err:  # report, still write what came out
            summary["eval_error"] = f"{type(err).__name__}: {err}"
            say(f"evaluation failed: {summary['eval_error']}")
        summary["eval_wall_s"] = round(time.time() - t_eval, 1)
    else:
        summary["eval"] = None
        say(f"no {run / 'best'} yet (no validation reached): nothing to evaluate")
    write_outputs(run, out, summary)
    summary["wall_s"] = round(time.time() - t0, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    ev = (summary.get("eval") or {}).get("total", {})
    say(f"summary: step {summary.get('step')} ({summary.get('finished') or summary.get('stopped')}), "
        f"{summary.get('images_per_s_after_compile')} img/s after the compile "
        f"({summary.get('steady_images_per_s')} between validations), best val NME {summary.get('best_val_nme')}, "
        f"{'/'.join(subsets if ev else [])} NME {ev.get('nme')} AUC {ev.get('auc')} FR {ev.get('fr')}; "
        f"resume: {summary.get('resume')}; wall {summary['wall_s']} s")
    return rc


if __name__ == "__main__":
    sys.exit(main())
