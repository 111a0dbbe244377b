"""``flzoo list``, ``flzoo predict`` and ``flzoo export``."""

import json
import math
import os
from pathlib import Path

import click

from flzoo.detect import DEFAULT_DETECTOR, DETECTORS

ASTRONAUT = "astronaut"  # the name used for scikit-image's astronaut photo when no photo is given


@click.command("list")
@click.argument("pattern", default="*")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
def list_cmd(pattern, as_json):
    """List the registry's models (PATTERN: a glob on the name or the variant). A bare variant name loads the
    model that lists it under "also"."""
    from flzoo.registry import did_you_mean, known_names, list_models

    entries = list_models(pattern)
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    if not entries:
        raise click.ClickException(f"no model matches {pattern!r}{did_you_mean(pattern, known_names())}; "
                                   f"`flzoo list` shows them all")
    rows = [("name", "also", "tag", "backbone", "input", "params", "NME", "weights")]
    for e in entries:
        also = ", ".join(e["aliases"] + (["(default)"] if e["default"] else [])) or "-"
        params = f"{e['params'] / 1e6:.2f} M" if e["params"] else "-"
        nme = f"{e['nme']:.4f}" if e["nme"] is not None else "-"
        rows.append((e["name"], also, e["tag"], e["backbone"], str(e["input_size"]), params, nme, e["source"]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    click.echo("\nparams: trainable parameters stored (the lite +disc models also store their 35 k-parameter shape "
               "discriminator). NME: Helen test from ground-truth crops, the network alone (no flip).")


def _face_json(face):
    """A face as strict JSON: a coordinate that is not finite becomes null, never a NaN token."""
    def num(v, digits):
        v = float(v)
        return round(v, digits) if math.isfinite(v) else None

    out = {"points": [[num(x, 3), num(y, 3)] for x, y in face["points"]],
           "box": [num(v, 3) for v in face["box"]],
           "score": None if face["score"] is None else num(face["score"], 4)}
    if "confidence" in face:  # flzoo.confidence
        out["confidence"] = num(face["confidence"], 4)
        out["point_confidence"] = [num(v, 4) for v in face["point_confidence"]]
    if "id" in face:  # a tracked face (video)
        out = {"id": int(face["id"]), **out}
    return out


def _write_image(path, rgb):
    from flzoo.drawing import encode

    path = Path(path)
    try:
        data = encode(rgb, path.suffix)
    except ValueError as err:
        raise click.ClickException(f"{path}: {err}") from None
    write_file(path, data, "the overlay")


def write_file(path, data, what):
    """Write ``data`` (bytes or str) to ``path`` through a temporary file, so an interrupted or failed write
    never leaves a truncated file; a failure is one ClickException saying what could not be written and why."""
    from flzoo.paths import write_atomic

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
    except OSError as err:
        raise click.ClickException(f"{path}: cannot write {what} ({err.strerror or err})") from None


def write_json(path, doc, indent=None):
    """Write ``doc`` as strict JSON; when the file cannot be written the JSON goes to stdout (the points are
    not lost) before the error."""
    text = json.dumps(doc, indent=indent, allow_nan=False) + "\n"
    try:
        write_file(path, text, "the JSON")
    except click.ClickException:
        click.echo(text)
        raise
    click.echo(f"wrote {path}")


def _check_writable(path, what):
    """Fail before any work when ``path`` cannot be written: a folder in the way, a parent that is a file or
    unwritable."""
    path = Path(path)
    if path.is_dir():
        raise click.UsageError(f"{path}: is a folder; expected a file path for {what}")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise click.UsageError(f"{path}: {parent} is a file, not a folder; cannot write {what} there")
    if not os.access(parent, os.W_OK):
        raise click.UsageError(f"{path}: the folder {parent} is not writable; cannot write {what} there")


def overlay_targets(labels, output, out_dir, inputs):
    """One overlay path per photo label: ``-o`` for one photo, else ``<out_dir>/<stem>_landmarks.png`` with
    ``-2``, ``-3``, ... where two photos share a stem. Refuses a target that is one of the input photos."""
    from flzoo.drawing import IMAGE_SUFFIXES

    if output is not None:
        if Path(output).suffix.lower() not in IMAGE_SUFFIXES:
            raise click.UsageError(f"-o/--output {output}: expected a .png or .jpg file name")
        targets = [Path(output)]
    else:
        folder, targets, taken = Path(out_dir or "."), [], set()
        for label in labels:
            stem = Path(label).stem
            candidate, n = folder / f"{stem}_landmarks.png", 1
            while candidate in taken:
                n += 1
                candidate = folder / f"{stem}_landmarks-{n}.png"
            taken.add(candidate)
            targets.append(candidate)
    resolved_inputs = {Path(p).resolve() for p in inputs}
    for target in targets:
        if target.resolve() in resolved_inputs:
            raise click.UsageError(f"{target}: is one of the input photos; flzoo never writes over an input. "
                                   f"Choose another -o/--output")
        _check_writable(target, "the overlay")
    return targets


def get_detector_option(name):
    """The detector for a ``--detector`` NAME, or a UsageError saying what is wrong (unknown name, missing
    package)."""
    from flzoo.detect import get_detector

    if name == "none":
        raise click.UsageError("--detector none: this command needs a face detector; choose one of "
                               f"{', '.join(DETECTORS)}")
    try:
        return get_detector(name)
    except ValueError as err:
        raise click.UsageError(f"--detector: {err}") from None


@click.command()
@click.argument("photos", nargs=-1, type=click.Path(dir_okay=False))  # str: a URL keeps its "//"
@click.option("--model", "-m", default=None, help="Registry name, model folder or hf://ORG/NAME[@REV] "
              "[default: the registry's default model].")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Overlay image path (one photo only).")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for one overlay per photo (<stem>_landmarks.png).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write all faces' points, boxes and scores to this JSON file.")
@click.option("--refine/--no-refine", default=True, show_default=True,
              help="Re-crop each face from its first predicted landmarks and predict again.")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(1),
              help="Photos read and predicted together.")
@click.option("--flip/--no-flip", default=True, show_default=True,
              help="Test-time flip: average the final crop's prediction with its mirror image's (no extra "
                   "pass: the face confidence makes it). --no-flip: the network alone, as recorded figures are.")
@click.option("--runtime", type=click.Choice(["auto", "keras", "litert", "onnx"]), default="auto", show_default=True,
              help="Where the network runs: auto = the fastest installed runtime verified for the model.")
@click.option("--smooth/--no-smooth", default=True, show_default=True,
              help="Video: One-Euro smoothing of the points over time.")
@click.option("--min-cutoff", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Video: One-Euro minimum cutoff in Hz (lower: smoother at rest) [default: 1.0].")
@click.option("--beta", type=click.FloatRange(min=0), default=None,
              help="Video: One-Euro speed coefficient (higher: less lag when moving) [default: 3.0].")
@click.option("--detect-every", type=click.IntRange(1), default=None,
              help="Video: frames between face detections that pick up new faces [default: 30].")
@click.option("--min-confidence", type=click.FloatRange(0, 1), default=None,
              help="Video: re-detect a face whose confidence falls below this [default: 0.5].")
@click.option("--detector", default=DEFAULT_DETECTOR, show_default=True,
              help=f"Face detector: {', '.join(DETECTORS)} (docs/inference.md, 'Face detection').")
def predict(photos, model, output, out_dir, json_path, refine, batch_size, flip, runtime, smooth, min_cutoff, beta,
            detect_every, min_confidence, detector):
    """Detect faces in PHOTO(s), predict 68 landmarks and draw them; or track them through one VIDEO.

    With no PHOTO, runs on scikit-image's astronaut photo (public domain). Without -o / --out-dir the overlays
    go to the current folder as <stem>_landmarks.png (<stem>_landmarks.mp4 for a video: .mp4, .avi, .mov,
    .mkv, .m4v, .webm)."""
    import flzoo
    from flzoo.drawing import draw_faces
    from flzoo.inference import read_image
    from flzoo.video import is_video

    if any(is_video(p) for p in photos):
        from flzoo.commands.video import predict_video

        if len(photos) > 1:
            raise click.UsageError(f"a video is predicted on its own; got {len(photos)} inputs")
        predict_video(photos[0], model, output, out_dir, json_path, refine, flip, runtime,
                      get_detector_option(detector),
                      {"smooth": smooth, "min_cutoff": min_cutoff, "beta": beta, "detect_every": detect_every,
                       "min_confidence": min_confidence})
        return

    if output and out_dir:
        raise click.UsageError("give -o/--output or --out-dir, not both")
    if output and len(photos) > 1:
        raise click.UsageError(f"-o/--output takes one photo, got {len(photos)}; use --out-dir for several")
    labels = [str(p) for p in photos] or [ASTRONAUT]
    targets = overlay_targets(labels, output, out_dir, photos)  # checked before any work
    if json_path:
        if Path(json_path).resolve() in {Path(p).resolve() for p in photos}:
            raise click.UsageError(f"--json {json_path}: is one of the input photos; choose another path")
        _check_writable(json_path, "the JSON")
    detector_fn = get_detector_option(detector)
    try:
        landmarker = flzoo.load(model, detector=detector_fn, refine=refine, flip=flip, runtime=runtime)
    except ValueError as err:
        raise click.UsageError(f"--model: {err}") from None

    if photos:
        sources = list(photos)
    else:
        from skimage import data

        sources = [data.astronaut()]
    items = list(zip(labels, sources, targets))
    records, failed, unwritten = [], 0, 0
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        good = []
        for label, src, target in chunk:
            try:
                good.append((label, read_image(src, label), target))
            except ValueError as err:
                click.echo(f"error: {err}", err=True)
                failed += 1
        results = landmarker.predict([img for _, img, _ in good]) if good else []
        for (label, img, target), faces in zip(good, results):
            if not faces:
                click.echo(f"no face found in {label}", err=True)
            try:
                _write_image(target, draw_faces(img, faces))
                click.echo(f"{label}: {len(faces)} face(s) -> {target}")
            except click.ClickException as err:  # go on: the other photos and the JSON still get written
                click.echo(f"error: {err.message}", err=True)
                target, unwritten = None, unwritten + 1
            records.append({"image": label, "width": int(img.shape[1]), "height": int(img.shape[0]),
                            "overlay": None if target is None else str(target),
                            "faces": [_face_json(f) for f in faces]})
    if json_path:
        write_json(json_path, {"model": landmarker.name, "detector": detector, "refine": landmarker.refine,
                               "flip": landmarker.flip, "runtime": landmarker.runtime, "images": records}, indent=1)
    if failed or unwritten:
        raise click.ClickException(", ".join(
            m for m in (f"{failed} photo(s) could not be read" if failed else "",
                        f"{unwritten} overlay(s) could not be written" if unwritten else "") if m)
            + " (see above)")


@click.command()
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(("onnx", "litert", "tf_saved_model", "openvino")),
              default="onnx", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Output path: NAME.onnx (onnx), NAME.tflite (litert), NAME.xml (openvino) or a folder "
                   "(tf_saved_model).")
def export(name, fmt, output):
    """Export model NAME (registry name, folder or hf://...) for inference outside Keras.

    The exported graph takes (B, S, S, 3) float32 RGB 0..255 face crops (S = the model's input size, cropped with
    flzoo's protocol) and returns (B, 68, 2) points in crop pixels."""
    from flzoo.export import export_model
    from flzoo.inference import resolve_folder
    from flzoo.weights import load_model

    try:
        model = load_model(resolve_folder(name))
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    try:
        export_model(model, output, fmt)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    except ImportError as err:
        hint = {"onnx": "pip install 'flzoo[export]'", "openvino": "pip install openvino"}.get(fmt, "")
        raise click.ClickException(f"--format {fmt} needs a package that is not installed: {err}"
                                   + (f" ({hint})" if hint else "")) from None
    click.echo(f"exported {name} ({fmt}, input {model.input_size}x{model.input_size}x3 RGB 0..255) -> {output}")
