"""The paper's metrics, plain numpy: NME, CED, AUC@0.08, failure rate, and the per-subset summaries of
``results.json`` (what ``flzoo eval`` reports and the training loop validates with).

Everything is scored in PHOTO coordinates, normalised by the ground-truth distance between the outer eye
corners (points 36 and 45, 0-based), so the figures do not depend on how a face was cropped or resized.
"""

from __future__ import annotations

import numpy as np

from flzoo.landmarks import NUM_POINTS, OUTER_EYE_CORNERS

THRESHOLD = 0.08  # AUC / failure-rate threshold (NME)


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


def as_errors(nmes):
    """Per-face NMEs as float64; a missing or non-finite NME (no prediction) counts as an infinite error."""
    e = np.asarray([np.inf if v is None else v for v in np.ravel(nmes)], dtype=np.float64)
    return np.where(np.isfinite(e), e, np.inf)


def ced(nmes, thresholds=None):
    """Cumulative error distribution: ``(thresholds, fraction of faces with NME <= threshold)``.

    Default thresholds: 0 to 0.1 in steps of 0.0001."""
    e = np.sort(as_errors(nmes))
    x = np.linspace(0.0, 0.1, 1001) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    if e.size == 0:
        return x, np.zeros_like(x)
    return x, np.searchsorted(e, x, side="right") / e.size


def auc(nmes, threshold=THRESHOLD):
    """Area under the CED from 0 to ``threshold``, divided by ``threshold`` (1 = every face perfect).

    Exact for the step CED: a face with error e contributes (threshold - e) / threshold when e < threshold."""
    e = as_errors(nmes)
    if e.size == 0:
        return float("nan")
    return float(np.clip(threshold - e, 0.0, None).mean() / threshold)


def failure_rate(nmes, threshold=THRESHOLD):
    """Fraction of faces whose NME exceeds ``threshold``."""
    e = as_errors(nmes)
    return float((e > threshold).mean()) if e.size else float("nan")


def summarize(nmes, nmes_eyes, threshold=THRESHOLD):
    """One results.json summary entry: mean NME (68 points and eye anchors), AUC, failure rate, count."""
    e, eyes = as_errors(nmes), as_errors(nmes_eyes)
    return {
        "nme": float(e.mean()) if e.size else float("nan"),
        "nme_eyes": float(eyes.mean()) if eyes.size else float("nan"),
        "auc": auc(e, threshold),
        "fr": failure_rate(e, threshold),
        "n": int(e.size),
    }


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
