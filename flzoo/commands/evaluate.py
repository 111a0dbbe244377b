"""``flzoo eval`` (score a model on the 300-W family test sets) and ``flzoo compare`` (Table 2 across runs).

Heavy imports (Keras, the data layer, matplotlib) happen inside the commands, so ``flzoo --help`` stays fast."""

import time
from pathlib import Path

import click

from flzoo.detect import DEFAULT_DETECTOR, DETECTORS


def _subset_list(values):
    """``--subsets a,b --subsets c`` -> ["a", "b", "c"]."""
    return [s.strip() for v in values for s in v.split(",") if s.strip()]


def _select_subsets(found, wanted, root):
    from flzoo.data.datasets import TEST_SUBSETS, TRAIN_SUBSETS

    known = tuple(TRAIN_SUBSETS) + tuple(TEST_SUBSETS)
    if not wanted:
        chosen = [s for s in TEST_SUBSETS if s in found]
        if not chosen:
            raise click.UsageError(
                f"--data {root}: no test set found (found: {', '.join(found) or 'nothing'}); expected at least "
                f"one of {', '.join(TEST_SUBSETS)} in the 300-W layout (e.g. helen/testset/)"
            )
        return chosen
    for s in wanted:
        if s not in known:
            raise click.UsageError(f"--subsets: unknown subset {s!r}; expected some of {', '.join(known)}")
        if s not in found:
            raise click.UsageError(
                f"--subsets: {s!r} is not in --data {root} (found: {', '.join(found) or 'nothing'})"
            )
    return list(dict.fromkeys(wanted))


@click.command("eval")
@click.option("--model", "model", required=True, help="Registry name, model folder, or hf://ORG/NAME[@REV].")
@click.option("--data", "data", type=click.Path(path_type=Path), default=None,
              help="300-W family root folder [default: $FLZOO_300W or ../shared/data/300w].")
@click.option("--subsets", multiple=True,
              help="Subsets to score, comma-separated or repeated (e.g. helen_test,ibug) "
                   "[default: every test set present].")
@click.option("--boxes", type=click.Choice(["gt", "detector"]), default="gt", show_default=True,
              help="gt: crop from the ground-truth landmarks (the paper's protocol); detector: the model's "
                   "face detector, as a user would run it.")
@click.option("--misses", type=click.Choice(["gt", "exclude"]), default="gt", show_default=True,
              help="With --boxes detector: score faces the detector missed from the ground-truth crop, or "
                   "exclude them from NME/AUC/FR (the detection rate is reported either way).")
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Output folder [default: eval-<model>-<boxes>].")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Score only the first N faces of each subset (quick checks).")
@click.option("--flip/--no-flip", default=True, show_default=True,
              help="Test-time flip: average the final crop's prediction with its mirror image's (no extra "
                   "pass: the face confidence makes it). --no-flip: the network alone, as recorded figures are.")
@click.option("--runtime", type=click.Choice(["auto", "keras", "litert", "onnx"]), default="auto", show_default=True,
              help="Where the network runs: auto = the fastest installed runtime verified for the model.")
@click.option("--skip-bad", is_flag=True,
              help="Leave out faces whose files are bad (listed and counted in results.json) instead of stopping.")
@click.option("--detector", default=DEFAULT_DETECTOR, show_default=True,
              help=f"Face detector for --boxes detector: {', '.join(DETECTORS)}.")
def eval_cmd(model, data, subsets, boxes, misses, out, batch_size, limit, flip, runtime, skip_bad, detector):
    """Score a model: NME (68 points and eye anchors), AUC@0.08, FR@0.08 per subset; writes results.json,
    table.md, ced_68.png and ced_eyes.png."""
    import flzoo
    from flzoo.commands.predict import get_detector_option
    from flzoo.data.check import checked_faces
    from flzoo.data.datasets import present_subsets
    from flzoo.evaluate import evaluate_faces
    from flzoo.report import write_outputs
    from flzoo.paths import default_data_root

    root = data if data is not None else default_data_root()
    if not root.is_dir():
        raise click.UsageError(f"--data {root}: no such folder; expected the 300-W family root folder")
    chosen = _select_subsets(present_subsets(root), _subset_list(subsets), root)
    detector_fn = get_detector_option(detector) if boxes == "detector" else None
    started = time.perf_counter()
    try:
        found, skipped = checked_faces(root, chosen, skip_bad)  # every file checked before the model loads
        for line in skipped:
            click.echo(f"--skip-bad: left out {line}", err=True)
        faces = {s: found[s][:limit] if limit else found[s] for s in chosen if s in found}
        landmarker = flzoo.load(model, detector=detector_fn, flip=flip, runtime=runtime)
        results = evaluate_faces(landmarker, faces, boxes=boxes, misses=misses, batch_size=batch_size,
                                 model_name=model)
        results.update(flip=flip, runtime=getattr(landmarker, "runtime", "keras"), skipped=skipped,
                       **({"detector": detector} if boxes == "detector" else {}))
    except ValueError as exc:  # a user-caused problem (model folder, data), already worded for the user
        raise click.ClickException(str(exc)) from None
    seconds = time.perf_counter() - started
    results = {"model": results["model"], "data": str(root.resolve()), **results}  # data: for tools/rescore.py
    if out is None:
        out = Path(f"eval-{Path(model).name or 'model'}-{boxes}")
    try:
        write_outputs(results, out)
    except OSError as err:
        raise click.ClickException(f"{err.filename or out}: cannot write the evaluation ({err.strerror or err})"
                                   ) from None
    n = sum(len(v) for v in faces.values())
    click.echo((out / "table.md").read_text())
    click.echo(f"{n} faces in {seconds:.1f} s (model loading included); wrote {out}/results.json, table.md, "
               "ced_68.png, ced_eyes.png", err=True)


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", "out", type=click.Path(path_type=Path), default=Path("comparison"),
              show_default=True, help="Output folder for comparison.md, ced_68.png and ced_eyes.png.")
@click.option("--paired", "pairs", multiple=True, metavar="A,B",
              help="Compare configurations A and B face by face (NME difference, 95% bootstrap interval over "
                   "seeds and faces); "
                   "repeatable. A configuration is a run folder name without its _seed<N> suffix.")
@click.option("--paper", is_flag=True,
              help="Add the reference figures: the paper's Table 2 NME of each column's variant (a row under "
                   "each test set) and dlib's ERT measured on this data (a column); in aggregate.md, the paper's NME "
                   "of each configuration and its A - B of each --paired.")
def compare(runs, out, pairs, paper):
    """Compare evaluations in the paper's Table 2 layout. Each RUN is a results.json, a folder written by
    `flzoo eval --out`, or a run folder holding eval*/results.json. Runs of one configuration (run folders
    named <config>_seed<N>) are also aggregated into aggregate.md: mean +/- std over the runs, and each run's
    best validation NME where its run folder's metrics.json has it."""
    from flzoo.aggregate import group_runs, render_aggregate
    from flzoo.report import find_results, load_results, write_comparison

    try:
        parsed = []
        for pair in pairs:
            names = [p.strip() for p in pair.split(",")]
            if len(names) != 2 or not all(names):
                raise ValueError(f"--paired {pair!r}: expected two configuration names A,B")
            parsed.append(tuple(names))
        loaded = [(str(f), load_results(f)) for run in runs for f in find_results(run)]
        # rendered before anything is written, so that an error leaves no half-updated output folder
        groups = group_runs(loaded)
        aggregate = (render_aggregate(groups, parsed, paper)
                     if parsed or any(len(v) > 1 for v in groups.values()) else None)
        text = write_comparison(loaded, out, paper)
        if aggregate:
            (out / "aggregate.md").write_text(aggregate)
            text += "\n" + aggregate
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as err:
        raise click.ClickException(f"{err.filename or out}: {err.strerror or err}") from None
    click.echo(text)
    click.echo(f"wrote {out}/comparison.md, ced_68.png, ced_eyes.png" + (", aggregate.md" if aggregate else ""),
               err=True)
