"""``flzoo list``, ``flzoo predict`` and ``flzoo export``."""

import contextlib
import json
from pathlib import Path

import click

EXPORT_FORMATS = ("onnx", "litert", "tf_saved_model", "openvino")
EXPORT_SUFFIX = {"onnx": ".onnx", "litert": ".tflite", "openvino": ".xml"}
ASTRONAUT = "astronaut"  # the name used for scikit-image's astronaut photo when no photo is given


@click.command("list")
@click.argument("pattern", default="*")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
def list_cmd(pattern, as_json):
    """List the registry's models (PATTERN: a glob on the name)."""
    from flzoo.registry import DEFAULT_MODEL, list_models

    entries = list_models(pattern)
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    if not entries:
        click.echo(f"no model matches {pattern!r}")
        return
    rows = [("name", "variant", "backbone", "input", "params", "NME", "weights")]
    for e in entries:
        name = e["name"] + (" (default)" if e["name"] == DEFAULT_MODEL else "")
        params = f"{e['params'] / 1e6:.2f} M" if e["params"] else "-"
        nme = f"{e['nme']:.4f}" if e["nme"] is not None else "-"
        rows.append((name, e["variant"], e["backbone"], str(e["input_size"]), params, nme, e["source"]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def draw_faces(image, faces):
    """An RGB copy of ``image`` with each face's box (green) and 68 points (red), sized to the photo."""
    import cv2
    import numpy as np

    out = np.ascontiguousarray(image.copy())
    h, w = out.shape[:2]
    for face in faces:
        x0, y0, x1, y1 = face["box"]
        side = max(x1 - x0, y1 - y0)
        thick = max(1, round(side / 150))
        radius = max(1, round(side / 100))
        cv2.rectangle(out, (round(x0), round(y0)), (round(x1), round(y1)), (0, 255, 0), thick, cv2.LINE_AA)
        for x, y in face["points"]:
            if np.isfinite(x) and np.isfinite(y) and -w < x < 2 * w and -h < y < 2 * h:
                cv2.circle(out, (round(float(x)), round(float(y))), radius, (255, 0, 0), -1, cv2.LINE_AA)
    return out


def _face_json(face):
    return {"points": [[round(float(x), 3), round(float(y), 3)] for x, y in face["points"]],
            "box": [round(float(v), 3) for v in face["box"]],
            "score": None if face["score"] is None else round(float(face["score"]), 4)}


def _write_image(path, rgb):
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        ok = cv2.imwrite(str(path), rgb[:, :, ::-1].copy())
    except cv2.error:
        ok = False
    if not ok:
        raise click.ClickException(f"{path}: cannot write the overlay (expected a writable .png/.jpg path)")


@click.command()
@click.argument("photos", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
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
@click.option("--flip/--no-flip", default=False, show_default=True,
              help="Test-time flip: average each crop's prediction with its mirror image's.")
def predict(photos, model, output, out_dir, json_path, refine, batch_size, flip):
    """Detect faces in PHOTO(s), predict 68 landmarks and draw them.

    With no PHOTO, runs on scikit-image's astronaut photo (public domain). Without -o / --out-dir the overlays
    go to the current folder as <stem>_landmarks.png."""
    import flzoo
    from flzoo.inference import read_image

    if output and out_dir:
        raise click.UsageError("give -o/--output or --out-dir, not both")
    if output and len(photos) > 1:
        raise click.UsageError(f"-o/--output takes one photo, got {len(photos)}; use --out-dir for several")
    try:
        landmarker = flzoo.load(model, refine=refine, flip=flip)
    except ValueError as err:
        raise click.UsageError(f"--model: {err}") from None

    if photos:
        items = [(str(p), p) for p in photos]
    else:
        from skimage import data

        items = [(ASTRONAUT, data.astronaut())]
    records, failed = [], 0
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        good = []
        for label, src in chunk:
            try:
                good.append((label, read_image(src, label)))
            except ValueError as err:
                click.echo(f"error: {err}", err=True)
                failed += 1
        results = landmarker.predict([img for _, img in good]) if good else []
        for (label, img), faces in zip(good, results):
            if not faces:
                click.echo(f"no face found in {label}", err=True)
            stem = Path(label).stem
            target = output or (out_dir or Path(".")) / f"{stem}_landmarks.png"
            _write_image(target, draw_faces(img, faces))
            click.echo(f"{label}: {len(faces)} face(s) -> {target}")
            records.append({"image": label, "width": int(img.shape[1]), "height": int(img.shape[0]),
                            "overlay": str(target), "faces": [_face_json(f) for f in faces]})
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({"model": landmarker.name, "refine": landmarker.refine,
                                         "flip": landmarker.flip, "images": records}, indent=1) + "\n")
        click.echo(f"wrote {json_path}")
    if failed:
        raise click.ClickException(f"{failed} photo(s) could not be read (see above)")


@contextlib.contextmanager
def _onnx_safe_argmax(fmt):
    """Keras' TensorFlow ``argmax`` on floats maps -0.0 to -tiny using ``signbit``, built from ``Bitcast`` and
    ``BitwiseAnd``, which ONNX has no op for (the export is refused by onnxruntime). For the ONNX export only,
    ``signbit`` is swapped for ``x < 0``: the sole difference is which of several exactly-zero cells wins an
    argmax, irrelevant for landmark maps. Restored on exit."""
    if fmt != "onnx" or _backend() != "tensorflow":
        yield
        return
    import tensorflow as tf
    from keras.src.backend.tensorflow import numpy as tf_numpy

    original = tf_numpy.signbit
    tf_numpy.signbit = lambda x: tf.less(tf_numpy.convert_to_tensor(x), 0)
    try:
        yield
    finally:
        tf_numpy.signbit = original


def _backend():
    import keras

    return keras.backend.backend()


def export_model(model, path, fmt):
    """Export ``model.inference_model()`` (image RGB 0..255 -> points in crop pixels) with ``keras.Model.export``."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"format={fmt!r}: expected one of {', '.join(EXPORT_FORMATS)}")
    path = Path(path)
    suffix = EXPORT_SUFFIX.get(fmt)
    if suffix and path.suffix != suffix:
        raise ValueError(f"{path}: a {fmt} export needs a path ending in {suffix}")
    if path.parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    import numpy as np

    graph = model.inference_model()
    size = model.input_size
    graph(np.zeros((1, size, size, 3), np.float32))  # Keras' ONNX exporter refuses a never-called model
    with _onnx_safe_argmax(fmt):
        graph.export(str(path), format=fmt, verbose=False)
    return path


@click.command()
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default="onnx", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Output path: NAME.onnx (onnx), NAME.tflite (litert), NAME.xml (openvino) or a folder "
                   "(tf_saved_model).")
def export(name, fmt, output):
    """Export model NAME (registry name, folder or hf://...) for inference outside Keras.

    The exported graph takes (B, S, S, 3) float32 RGB 0..255 face crops (S = the model's input size, cropped with
    flzoo's protocol) and returns (B, 68, 2) points in crop pixels."""
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
