"""``flzoo data check``: every problem of a 300-W / COFW-68 copy at once, as a plain report dict."""

from pathlib import Path

import numpy as np

from flzoo.data.datasets import (COFW_IMAGES_FILE, DATASETS, IMAGE_EXTENSIONS, SUBSETS, cofw_paths, discover,
                                 image_for, points_outside, read_cofw_images, read_cofw_points, read_image,
                                 subset_folders)
from flzoo.data.pts import read_pts

# A point further outside the image than this fraction of the landmark box's larger side is an error
# (a wrong file or a coordinate bug); a smaller overshoot (faces cut by the photo border) is only a warning.
FAR_OUTSIDE = 0.25


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _problem(err, path: Path) -> str:
    """An error message without the path the report already names ('line N: ...' kept)."""
    message = str(err)
    prefix = f"{path}:"
    if message.startswith(prefix):
        rest = message[len(prefix):]
        line, _, tail = rest.partition(":")
        message = f"line {line}:{tail}" if line.isdigit() else rest.strip()
    return message


def jpeg_truncated(path: Path) -> bool:
    """A JPEG whose end-of-image marker is missing: OpenCV 4 still decodes it (bottom left grey); 5 refuses."""
    with open(path, "rb") as f:
        if f.read(2) != b"\xff\xd8":
            return False
        f.seek(max(0, path.stat().st_size - 256))
        tail = f.read().rstrip(b"\x00\r\n\t ")
    return b"\xff\xd9" not in tail[-64:]


def check_points(points, width, height):
    """None when fine, else ``(level, message)`` for points outside a ``width x height`` image."""
    distance = points_outside(points, width, height)
    if distance == 0:
        return None
    box = float(np.max(points.max(axis=0) - points.min(axis=0)))
    message = f"points up to {distance:.1f} px outside the {width}x{height} image"
    if distance > FAR_OUTSIDE * max(box, 1.0):
        return "error", message + f" (more than {FAR_OUTSIDE:g} x the landmark box side {box:.0f} px)"
    return "warning", message


def check_folder(folder: Path, root: Path, report, name):
    """Check one folder of ``.pts`` + image pairs; adds counts, errors and warnings to ``report``."""
    errors, warnings = report["errors"], report["warnings"]
    n_bad = len(errors)
    pts_files = sorted(folder.glob("*.pts"))
    for pts_path in pts_files:
        rel = _rel(pts_path, root)
        try:
            points = read_pts(pts_path)
        except ValueError as err:
            errors.append({"subset": name, "file": rel, "problem": f"malformed .pts: {_problem(err, pts_path)}"})
            points = None
        image_path = image_for(pts_path)
        if image_path is None:
            errors.append({"subset": name, "file": rel,
                           "problem": f"image missing: no {pts_path.stem} with {'/'.join(IMAGE_EXTENSIONS)} beside it"})
            continue
        try:
            image = read_image(image_path)
        except ValueError as err:
            errors.append({"subset": name, "file": _rel(image_path, root),
                           "problem": f"unreadable image: {_problem(err, image_path)}"})
            continue
        if jpeg_truncated(image_path):
            errors.append({"subset": name, "file": _rel(image_path, root),
                           "problem": "truncated JPEG (no end-of-image marker)"})
        if points is not None:
            found = check_points(points, image.shape[1], image.shape[0])
            if found:
                (errors if found[0] == "error" else warnings).append(
                    {"subset": name, "file": rel, "problem": found[1]})
    stems = {p.stem for p in pts_files}
    for image_path in sorted(folder.iterdir()):
        if image_path.suffix.lower() in IMAGE_EXTENSIONS and image_path.stem not in stems:
            warnings.append({"subset": name, "file": _rel(image_path, root),
                             "problem": "image without a .pts (ignored)"})
    bad_files = {e["file"].rsplit(".", 1)[0] for e in errors[n_bad:]}
    report["subsets"][name] = {"folder": _rel(folder, root), "faces": len(pts_files),
                               "bad": len(bad_files)}


def check_cofw(root: Path, report):
    annotations, images_file = cofw_paths(root)
    if annotations is None:
        return
    errors = report["errors"]
    n_bad = len(errors)
    files = sorted(annotations.glob("*_points.mat"))
    images = []
    if images_file is None:
        errors.append({"subset": "cofw", "file": _rel(annotations, root),
                       "problem": f"COFW-68 annotations without {COFW_IMAGES_FILE}"})
    else:
        try:
            images = read_cofw_images(images_file)
        except (ValueError, OSError) as err:
            errors.append({"subset": "cofw", "file": _rel(images_file, root), "problem": _problem(err, images_file)})
    for path in files:
        rel = _rel(path, root)
        stem = path.name[: -len("_points.mat")]
        try:
            points, _ = read_cofw_points(path)
        except (ValueError, OSError) as err:
            errors.append({"subset": "cofw", "file": rel, "problem": f"malformed annotation: {_problem(err, path)}"})
            continue
        if not stem.isdigit() or int(stem) < 1:
            errors.append({"subset": "cofw", "file": rel, "problem": "name is not '<i>_points.mat', i >= 1"})
        elif images and int(stem) > len(images):
            errors.append({"subset": "cofw", "file": rel,
                           "problem": f"face {stem} but {COFW_IMAGES_FILE} holds {len(images)} images"})
        elif images:
            image = images[int(stem) - 1]
            found = check_points(points, image.shape[1], image.shape[0])
            if found:
                (errors if found[0] == "error" else report["warnings"]).append(
                    {"subset": "cofw", "file": rel, "problem": found[1]})
    report["subsets"]["cofw"] = {"folder": _rel(annotations, root), "faces": len(files),
                                 "bad": len({e["file"] for e in errors[n_bad:]})}


def check(root, subsets=None) -> dict:
    """``{"root", "subsets": {name: {"folder", "faces", "bad"}}, "errors": [...], "warnings": [...], "ok"}``
    for every subset below ``root``, or only for ``subsets``.

    A folder without the official layout but holding ``.pts`` files is checked as one subset ``folder``."""
    root = Path(root)
    report = {"root": str(root), "subsets": {}, "errors": [], "warnings": []}
    if not root.is_dir():
        report["errors"].append({"subset": None, "file": str(root), "problem": "not a folder"})
    else:
        for name, folder in subset_folders(root).items():
            if subsets is None or name in subsets:
                check_folder(folder, root, report, name)
        if subsets is None or "cofw" in subsets:
            check_cofw(root, report)
        if not report["subsets"] and any(root.glob("*.pts")):
            check_folder(root, root, report, "folder")
        if not report["subsets"]:
            layouts = ", ".join("/".join(d.folder) for d in DATASETS.values() if d.folder)
            report["errors"].append({"subset": None, "file": str(root),
                                     "problem": f"no faces found: expected one of {layouts}, COFW68_Data/"
                                                f"test_annotations or .pts files"})
    order = {s: i for i, s in enumerate(SUBSETS)}
    report["subsets"] = dict(sorted(report["subsets"].items(), key=lambda kv: order.get(kv[0], len(order))))
    report["ok"] = not report["errors"]
    return report


class BadDataError(ValueError):
    """Bad files in the data a run or an evaluation asked for; the message lists every one of them."""


def checked_faces(root, subsets, skip_bad=False):
    """``({subset: [Face, ...]}, skipped)``: the faces of ``subsets`` below ``root`` after checking every file
    of those subsets first (``check``), so that no bad file surfaces in the middle of a run.

    Bad files raise ``BadDataError`` listing all of them, unless ``skip_bad``: then their faces are left out
    and ``skipped`` lists them as ``"file: problem"``."""
    root = Path(root)
    report = check(root, subsets)
    bad = [e for e in report["errors"] if e["subset"] in subsets]
    listed = [f"{e['file']}: {e['problem']}" for e in bad]
    if bad and not skip_bad:
        lines = "\n  ".join(listed[:50]) + (f"\n  ... and {len(listed) - 50} more" if len(listed) > 50 else "")
        raise BadDataError(f"{root}: {len(bad)} bad file(s) in {', '.join(subsets)}:\n  {lines}\n"
                           f"Fix them, or pass --skip-bad to leave those faces out (`flzoo data check {root}` "
                           f"lists every problem)")
    # a COFW error not about one face's annotation (the images file) takes the whole subset out
    whole = {e["subset"] for e in bad if e["subset"] == "cofw" and not e["file"].endswith("_points.mat")}
    faces = discover(root, subsets=[s for s in subsets if s not in whole], skip={root / e["file"] for e in bad})
    return faces, listed
