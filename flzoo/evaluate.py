"""The paper's evaluation: NME, CED, AUC@0.08, failure rate; per-subset summaries, tables and CED plots.

Everything is scored in PHOTO coordinates, normalised by the ground-truth distance between the outer eye
corners (points 36 and 45, 0-based), so the figures do not depend on how a face was cropped or resized.
Metric functions are plain numpy; ``evaluate_faces`` runs a ``Landmarker`` over ``flzoo.data`` faces.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from flzoo.data.datasets import SUBSETS, dataset
from flzoo.landmarks import EYE_ANCHORS, NUM_POINTS, OUTER_EYE_CORNERS

THRESHOLD = 0.08  # AUC / failure-rate threshold (NME)
MIN_DETECTION_IOU = 0.3  # a detection matches a ground-truth face from this IoU with its landmark box



# ----------------------------------------------------------------------------------------------- metrics


def nme(pred, gt, indices=None):
    """Normalised mean error per face: mean point-to-point distance over ``indices`` (default all 68)
    divided by the ground-truth distance between points 36 and 45.

    ``pred``, ``gt``: ``(68, 2)`` (returns a float) or ``(N, 68, 2)`` (returns ``(N,)``), same frame."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.shape[-2:] != (NUM_POINTS, 2):
        raise ValueError(
            f"nme: pred has shape {pred.shape} and gt {gt.shape}; expected both (68, 2) or (N, 68, 2)"
        )
    single = pred.ndim == 2
    pred, gt = pred.reshape(-1, NUM_POINTS, 2), gt.reshape(-1, NUM_POINTS, 2)
    norm = np.linalg.norm(gt[:, OUTER_EYE_CORNERS[0]] - gt[:, OUTER_EYE_CORNERS[1]], axis=-1)
    bad = np.flatnonzero(~(norm > 0))
    if bad.size:
        raise ValueError(
            f"nme: ground-truth face {int(bad[0])} has its outer eye corners (points 36 and 45) at the same "
            "place; expected distinct points to normalise by"
        )
    idx = np.arange(NUM_POINTS) if indices is None else np.asarray(indices)
    err = np.linalg.norm(pred[:, idx] - gt[:, idx], axis=-1).mean(axis=-1) / norm
    return float(err[0]) if single else err


def _errors(nmes):
    """Per-face NMEs as float64; a missing or non-finite NME (no prediction) counts as an infinite error."""
    e = np.asarray([np.inf if v is None else v for v in np.ravel(nmes)], dtype=np.float64)
    return np.where(np.isfinite(e), e, np.inf)


def ced(nmes, thresholds=None):
    """Cumulative error distribution: ``(thresholds, fraction of faces with NME <= threshold)``.

    Default thresholds: 0 to 0.1 in steps of 0.0001."""
    e = np.sort(_errors(nmes))
    x = np.linspace(0.0, 0.1, 1001) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    if e.size == 0:
        return x, np.zeros_like(x)
    return x, np.searchsorted(e, x, side="right") / e.size


def auc(nmes, threshold=THRESHOLD):
    """Area under the CED from 0 to ``threshold``, divided by ``threshold`` (1 = every face perfect).

    Exact for the step CED: a face with error e contributes (threshold - e) / threshold when e < threshold."""
    e = _errors(nmes)
    if e.size == 0:
        return float("nan")
    return float(np.clip(threshold - e, 0.0, None).mean() / threshold)


def failure_rate(nmes, threshold=THRESHOLD):
    """Fraction of faces whose NME exceeds ``threshold``."""
    e = _errors(nmes)
    return float((e > threshold).mean()) if e.size else float("nan")


def summarize(nmes, nmes_eyes, threshold=THRESHOLD):
    """One results.json summary entry: mean NME (68 points and eye anchors), AUC, failure rate, count."""
    e, eyes = _errors(nmes), _errors(nmes_eyes)
    return {
        "nme": float(e.mean()) if e.size else float("nan"),
        "nme_eyes": float(eyes.mean()) if eyes.size else float("nan"),
        "auc": auc(e, threshold),
        "fr": failure_rate(e, threshold),
        "n": int(e.size),
    }


# ----------------------------------------------------------------------------------------- running a model


def _field(obj, key):
    """A detection's field, whether detections are dicts or objects."""
    return obj[key] if isinstance(obj, dict) else getattr(obj, key)


def _box_iou(a, b):
    """IoU of two ``(x0, y0, x1, y1)`` boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_detection(detections, gt_points, min_iou=MIN_DETECTION_IOU):
    """The detection whose box ``(x0, y0, x1, y1)`` best overlaps the ground-truth landmark box, or None when
    no detection reaches ``min_iou`` (a missed face). Matching uses the detector's box, not the predicted
    points, so a found face with bad landmarks still counts as found and is scored."""
    gt_box = (*np.min(gt_points, axis=0), *np.max(gt_points, axis=0))
    best, best_iou = None, min_iou
    for det in detections:
        iou = _box_iou([float(v) for v in _field(det, "box")], [float(v) for v in gt_box])
        if iou >= best_iou:
            best, best_iou = det, iou
    return best


def _input_size(landmarker):
    size = getattr(landmarker, "input_size", None)
    if not isinstance(size, (int, np.integer)) or size <= 0:
        raise ValueError(
            f"{type(landmarker).__name__}.input_size is {size!r}; expected the model's square input size in "
            "pixels (needed to crop faces for --boxes gt)"
        )
    return int(size)


def _gt_crop_predict(landmarker, images, faces, size):
    """The paper's protocol: crop each face from its ground-truth landmarks with the crop the model was
    trained with (``Landmarker.crop``: ``crop_square`` keyword arguments; flzoo's defaults when absent) and
    predict; returns ``(N, 68, 2)`` photo coordinates and, when the landmarker scores its points
    (``predict_scored_with_matrices``), ``(confidence (N,), point_confidence (N, 68))``, else None."""
    from flzoo.data.crop import crop_matrix, crop_square

    crop = getattr(landmarker, "crop", None) or {}
    matrices = np.stack([crop_matrix(*crop_square(f.points, **crop), size) for f in faces])
    scored = getattr(landmarker, "predict_scored_with_matrices", None)
    if scored is not None:
        res = scored(images, matrices)
        pred, conf = res["points"], (res["confidence"], res["point_confidence"])
    else:
        pred, conf = landmarker.predict_with_matrices(images, matrices), None
    pred = np.asarray(pred, dtype=np.float64)
    if pred.shape != (len(faces), NUM_POINTS, 2):
        raise ValueError(
            f"predict_with_matrices returned shape {pred.shape}; expected ({len(faces)}, 68, 2)"
        )
    return pred, conf


def evaluate_faces(landmarker, faces_by_subset, boxes="gt", misses="gt", batch_size=32, model_name=None,
                   progress=True):
    """Run ``landmarker`` on ``{subset: [Face, ...]}`` and return the ``results.json`` dict.

    ``boxes="gt"``: crop from ground-truth landmarks (the paper's protocol). ``boxes="detector"``: the
    landmarker's own detector; each ground-truth face is matched to the detection with the best box IoU
    (>= 0.3). A missed face is scored from the ground-truth crop (``misses="gt"``, like dlib's figure measured here,
    docs/paper.md) or left out of the NME (``misses="exclude"``, like dlib's numbers in the paper); either way the
    detection rate is reported."""
    from tqdm import tqdm

    from flzoo.data.datasets import load_image

    if boxes not in ("gt", "detector"):
        raise ValueError(f"boxes={boxes!r}; expected 'gt' or 'detector'")
    if misses not in ("gt", "exclude"):
        raise ValueError(f"misses={misses!r}; expected 'gt' or 'exclude'")
    size = _input_size(landmarker) if boxes == "gt" or misses == "gt" else None
    items = [(subset, face) for subset, faces in faces_by_subset.items() for face in faces]
    records = []
    bar = tqdm(total=len(items), desc=f"eval ({boxes} boxes)", unit="face", disable=None if progress else True)
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        faces = [f for _, f in chunk]
        images = [load_image(f) for f in faces]
        pred = [None] * len(faces)
        detected = [None] * len(faces)
        conf = [None] * len(faces)  # (face confidence, point confidences) when the landmarker gives them
        if boxes == "detector":
            found = landmarker.predict(images)
            for i, (face, dets) in enumerate(zip(faces, found)):
                det = match_detection(dets, face.points)
                detected[i] = det is not None
                if det is not None:
                    pred[i] = np.asarray(_field(det, "points"), dtype=np.float64)
                    if isinstance(det, dict) and "confidence" in det:
                        conf[i] = (det["confidence"], det["point_confidence"])
        todo = [i for i in range(len(faces)) if pred[i] is None]
        if todo and (boxes == "gt" or misses == "gt"):
            fallback, fb_conf = _gt_crop_predict(landmarker, [images[i] for i in todo],
                                                 [faces[i] for i in todo], size)
            for j, (i, p) in enumerate(zip(todo, fallback)):
                pred[i] = p
                if fb_conf is not None:
                    conf[i] = (fb_conf[0][j], fb_conf[1][j])
        for (subset, face), p, det, c in zip(chunk, pred, detected, conf):
            records.append(_face_record(subset, face, p, det, c))
        bar.update(len(chunk))
    bar.close()
    return {
        "model": model_name if model_name is not None else type(landmarker).__name__,
        "boxes": boxes,
        **({"misses": misses} if boxes == "detector" else {}),
        "summary": summarize_records(records, list(faces_by_subset)),
        **occlusion_split(records),
        "faces": records,
    }


def _face_record(subset, face, pred, detected, conf=None):
    rec = {"image": str(face.image_path), "subset": subset}
    if pred is None:  # missed by the detector and excluded
        rec.update(points=None, nme=None, nme_eyes=None)
    else:
        gt = np.asarray(face.points, dtype=np.float64)
        pred = np.round(pred, 4)  # as stored (1e-4 px), so the stored NMEs re-score exactly from the file
        rec.update(
            points=pred.tolist(),
            nme=nme(pred, gt),
            nme_eyes=nme(pred, gt, EYE_ANCHORS),
        )
    if conf is not None and pred is not None:  # flzoo.confidence: the face's score and its 68 points'
        rec["confidence"] = round(float(conf[0]), 4)
        rec["point_confidence"] = [round(float(v), 4) for v in conf[1]]
    if detected is not None:
        rec["detected"] = bool(detected)
    if getattr(face, "occluded", None) is not None:
        rec["occluded"] = bool(np.any(face.occluded))
    return rec


def _summary(records, threshold=THRESHOLD):
    scored = [r for r in records if r["nme"] is not None]
    out = summarize([r["nme"] for r in scored], [r["nme_eyes"] for r in scored], threshold)
    if records and "detected" in records[0]:
        out["detection_rate"] = sum(r["detected"] for r in records) / len(records)
    if any("confidence" in r for r in scored):
        from flzoo.confidence import confidence_summary

        out.update(confidence_summary([r["nme"] for r in scored], [r.get("confidence") for r in scored],
                                      threshold))
    return out


def summarize_records(records, subsets=None, threshold=THRESHOLD):
    """results.json ``summary`` from its ``faces`` records: one entry per subset (in ``subsets`` order) and
    ``total`` over all faces."""
    subsets = subsets or list(dict.fromkeys(r["subset"] for r in records))
    summary = {s: _summary([r for r in records if r["subset"] == s], threshold) for s in subsets}
    summary["total"] = _summary(records, threshold)
    return summary


def occlusion_split(records, threshold=THRESHOLD):
    """``{"occlusion": {subset: {"occluded": summary, "non_occluded": summary}}}`` for subsets whose faces
    carry occlusion flags (COFW); a face counts as occluded when any of its points is (the paper's 5.2)."""
    split = {}
    for s in dict.fromkeys(r["subset"] for r in records if "occluded" in r):
        recs = [r for r in records if r["subset"] == s and "occluded" in r]
        split[s] = {
            "occluded": _summary([r for r in recs if r["occluded"]], threshold),
            "non_occluded": _summary([r for r in recs if not r["occluded"]], threshold),
        }
    return {"occlusion": split} if split else {}


# ------------------------------------------------------------------------------------------ files, tables


def _jsonable(obj):
    """NaN / infinity (e.g. an empty subset) become null: results.json stays strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    return obj


def load_results(path):
    """Read a results.json (a file, or a folder holding one), checking the fields compare needs."""
    path = Path(path)
    file = path / "results.json" if path.is_dir() else path
    try:
        results = json.loads(file.read_text())
    except FileNotFoundError:
        raise ValueError(f"{file}: no such file; expected a results.json written by `flzoo eval`") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{file}: not valid JSON ({exc}); expected a results.json from `flzoo eval`") from None
    for key in ("model", "boxes", "summary", "faces"):
        if key not in results:
            raise ValueError(f"{file}: field {key!r} is missing; expected a results.json from `flzoo eval`")
    return results


def _label(subset):
    return dataset(subset).label


def _fmt(value, digits=4):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def _protocol(results):
    if results["boxes"] == "gt":
        return "boxes: ground truth (the paper's protocol: square crop from the GT landmarks)"
    how = ("scored from the ground-truth crop" if results.get("misses", "gt") == "gt"
           else "excluded from NME / AUC / FR")
    return f"boxes: face detector (faces the detector missed are {how})"


def render_table(results, threshold=THRESHOLD):
    """``table.md`` for one evaluation: per subset and total, NME, eye NME, AUC@0.08, FR@0.08, n."""
    det = results["boxes"] == "detector"
    head = ["set", "n", "NME", "NME eyes", f"AUC@{threshold:g}", f"FR@{threshold:g}"]
    head += ["detection rate"] if det else []
    scored = any("confidence_auroc" in v for v in results["summary"].values())
    head += ["conf. AUROC (failure)", "NME, most confident 90%"] if scored else []
    lines = [
        f"# Evaluation of `{results['model']}`",
        "",
        f"{_protocol(results)}. NME = mean point error / ground-truth distance between the outer eye corners "
        "(points 36 and 45), in photo coordinates; eyes = the 12 eye anchors (points 36-47)."
        + (" conf. AUROC: how well the face confidence ranks successes above failures (NME > "
           f"{threshold:g}); NME of the 90% of faces with the highest confidence." if scored else ""),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]

    def row(name, s):
        cells = [name, str(s["n"]), _fmt(s["nme"]), _fmt(s["nme_eyes"]), _fmt(s["auc"]),
                 "–" if s["fr"] is None else f"{100 * s['fr']:.1f}%"]
        if det:
            dr = s.get("detection_rate")
            cells.append("–" if dr is None else f"{100 * dr:.1f}%")
        if scored:
            cells += [_fmt(s.get("confidence_auroc"), 3), _fmt(s.get("nme_confident90"))]
        return "| " + " | ".join(cells) + " |"

    for subset, s in results["summary"].items():
        name = f"**{_label(subset)}**" if subset == "total" else _label(subset)
        lines.append(row(name, s))
    for subset, split in results.get("occlusion", {}).items():
        lines.append(row(f"{_label(subset)} occluded", split["occluded"]))
        lines.append(row(f"{_label(subset)} non-occluded", split["non_occluded"]))
    return "\n".join(lines) + "\n"


def plot_ced(curves, path, title, threshold=THRESHOLD):
    """Save a CED plot: ``curves`` = ``{legend label: per-face NMEs}``; x from 0 to 0.1 with the AUC/FR
    threshold marked. Matplotlib's Agg backend: no display needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    styles = ["-", "--", "-.", ":"]
    for i, (label, nmes) in enumerate(curves.items()):
        e = _errors(nmes)
        x, y = ced(e)
        mean = float(e.mean()) if e.size else None
        fr = failure_rate(e, threshold) if e.size else None
        text = (f"{label} (n {e.size}, NME {_fmt(mean)}, AUC {_fmt(auc(e, threshold), 3)}, "
                f"FR {'–' if fr is None else f'{100 * fr:.0f}%'})")
        if label == "Total":  # the summary curve stands out
            ax.plot(x, y, "-", color="black", linewidth=2.6, label=text)
        else:  # more than 10 curves cycle the colours: change the dash pattern too; occlusion splits dashed
            style = "--" if label.endswith("occluded") else styles[(i // 10) % len(styles)]
            ax.plot(x, y, style, linewidth=1.8, label=text)
    ax.axvline(threshold, color="grey", linewidth=1, linestyle=":")
    ax.set_xlim(0, 0.1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("NME (normalised by the outer-eye-corner distance)")
    ax.set_ylabel("fraction of faces")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, title_fontsize=8,
              title=f"AUC@{threshold:g} (dotted line: the AUC / FR threshold)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _curves(results, key):
    """CED curves of one evaluation: one per subset, the occlusion split, and the total."""
    faces = [f for f in results["faces"] if f[key] is not None]
    curves = {}
    subsets = [s for s in results["summary"] if s != "total"]
    for s in subsets:
        curves[_label(s)] = [f[key] for f in faces if f["subset"] == s]
    for s in results.get("occlusion", {}):
        for flag, name in ((True, "occluded"), (False, "non-occluded")):
            curves[f"{_label(s)} {name}"] = [
                f[key] for f in faces if f["subset"] == s and f.get("occluded") is flag]
    if len(subsets) > 1 or not subsets:
        curves["Total"] = [f[key] for f in faces]
    return curves


def write_outputs(results, out_dir):
    """Write ``results.json``, ``table.md``, ``ced_68.png`` and ``ced_eyes.png`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(_jsonable(results), allow_nan=False) + "\n")
    (out / "table.md").write_text(render_table(results))
    name = f"{short_name(results['model'])}, {'GT' if results['boxes'] == 'gt' else 'detector'} boxes"
    plot_ced(_curves(results, "nme"), out / "ced_68.png", f"CED, 68 points: {name}")
    plot_ced(_curves(results, "nme_eyes"), out / "ced_eyes.png", f"CED, 12 eye anchors: {name}")
    return out


# ------------------------------------------------------------------------------------------- comparison


_GENERIC_DIRS = ("best", "last", "latest", "final", "model", "checkpoints")


def short_name(model):
    """A model name for titles and columns: a registry name as is, a folder path by its last part (with the
    run folder's name for a run's ``best/``-like folder)."""
    path = Path(str(model))
    if path.name in _GENERIC_DIRS and path.parent.name:
        return f"{path.parent.name}/{path.name}"
    return path.name or str(model)


def _column_names(runs):
    """One column name per run: the model name (its folder name for a path), made unique."""
    names = []
    for path, res in runs:
        name = short_name(res["model"])
        if res["boxes"] != "gt":
            name += " (detector)"
        names.append(name)
    for i, name in enumerate(names):
        if names.count(name) > 1:
            names[i] = f"{name} [{runs[i][0]}]"
    return names


def compare_table(runs, metric="nme"):
    """The paper's Table 2: rows = test sets present in any run (paper order, then others, then Total),
    one column per run, the best value per row in bold (lowest NME / FR, highest AUC)."""
    names = _column_names(runs)
    present = list(dict.fromkeys(s for _, r in runs for s in r["summary"] if s != "total"))
    rows = [s for s in SUBSETS if s in present] + [s for s in present if s not in SUBSETS] + ["total"]
    lower_is_better = metric != "auc"
    lines = ["| set | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for s in rows:
        vals = [r["summary"].get(s, {}).get(metric) for _, r in runs]
        # compare the values as shown, so equal-looking cells are all marked best
        fmt = (lambda v: f"{100 * v:.1f}%") if metric == "fr" else _fmt
        shown = [None if v is None or not math.isfinite(v) else fmt(v) for v in vals]
        numbers = [None if t is None else float(t.rstrip("%")) for t in shown]
        valid = [v for v in numbers if v is not None]
        best = (min(valid) if lower_is_better else max(valid)) if valid else None
        cells = ["–" if t is None else f"**{t}**" if v == best and len(runs) > 1 else t
                 for t, v in zip(shown, numbers)]
        lines.append(f"| {_label(s)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_comparison(runs):
    """Markdown for ``flzoo compare``: NME (Table 2 layout), eye NME, AUC@0.08 and FR@0.08 tables."""
    names = _column_names(runs)
    parts = ["# Model comparison (the paper's Table 2 layout)", ""]
    for name, (path, res) in zip(names, runs):
        parts.append(f"- **{name}**: `{path}`; {_protocol(res)}")
    subsets = {tuple(s for s in r["summary"] if s != "total") for _, r in runs}
    if len(subsets) > 1:
        parts += ["", "Note: the runs cover different test sets, so their Total rows are not comparable."]
    parts += ["", "Best per row in bold.", ""]
    for metric, title in (("nme", "NME, 68 points"), ("nme_eyes", "NME, 12 eye anchors"),
                          ("auc", "AUC@0.08 (higher is better)"), ("fr", "Failure rate @0.08")):
        parts += [f"## {title}", "", compare_table(runs, metric)]
    return "\n".join(parts)


def find_results(path):
    """results.json files for ``flzoo compare``: PATH itself (a results.json), PATH/results.json (an eval
    folder), or PATH/eval*/results.json (a training run folder, as ``flzoo push`` reads it)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if (path / "results.json").is_file():
        return [path / "results.json"]
    found = sorted(path.glob("eval*/results.json"))
    if not found:
        raise ValueError(
            f"{path}: no results.json, {path / 'results.json'} or {path}/eval*/results.json; expected a folder "
            "written by `flzoo eval --out` (or a run folder holding one)"
        )
    return found


def write_comparison(run_paths, out_dir):
    """Write ``comparison.md``, ``ced_68.png`` (every model, all faces: the paper's Figure 9) and
    ``ced_eyes.png`` into ``out_dir``; returns the Markdown."""
    runs = [(str(p), load_results(p)) for p in run_paths]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = render_comparison(runs)
    (out / "comparison.md").write_text(text)
    names = _column_names(runs)
    for key, file, what in (("nme", "ced_68.png", "68 points"), ("nme_eyes", "ced_eyes.png", "12 eye anchors")):
        curves = {n: [f[key] for f in r["faces"] if f[key] is not None] for n, (_, r) in zip(names, runs)}
        plot_ced(curves, out / file, f"CED, {what}, all test faces")
    return text
