"""The evaluation protocol: running a ``Landmarker`` over ``flzoo.data`` faces, from ground-truth crops (the
paper's) or from the landmarker's own detector, into the ``results.json`` dict (metrics: ``flzoo.metrics``; files,
tables and plots: ``flzoo.report``)."""

from __future__ import annotations

import numpy as np

from flzoo.landmarks import EYE_ANCHORS, NUM_POINTS
from flzoo.metrics import nme, occlusion_split, summarize_records

MIN_DETECTION_IOU = 0.3  # a detection matches a ground-truth face from this IoU with its landmark box


def _field(obj, key):
    """A detection's field, whether detections are dicts or objects."""
    return obj[key] if isinstance(obj, dict) else getattr(obj, key)


def box_iou(a, b):
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
        iou = box_iou([float(v) for v in _field(det, "box")], [float(v) for v in gt_box])
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
    trained with (``Landmarker.crop``, a ``CropProtocol``; the training defaults when absent) and
    predict; returns ``(N, 68, 2)`` photo coordinates and, when the landmarker scores its points
    (``predict_scored_with_matrices``), ``(confidence (N,), point_confidence (N, 68))``, else None."""
    from flzoo.data.crop import CropProtocol

    crop = getattr(landmarker, "crop", None) or CropProtocol()
    matrices = np.stack([crop.matrix(f.points, size) for f in faces])
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
    variant = getattr(getattr(landmarker, "model", None), "variant", None)
    return {
        "model": model_name if model_name is not None else type(landmarker).__name__,
        **({"variant": variant} if variant else {}),  # the paper's column for flzoo compare --paper
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
