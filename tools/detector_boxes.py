"""How the crop from a detector box sits relative to the ground-truth training crop, on the TRAINING faces.

    python tools/detector_boxes.py [--root DATA_ROOT] [--out docs/detector_boxes.json]

For every training face (afw, helen_train, lfpw_train) dlib's HOG detector (flzoo.detect.DlibDetector, the
calibrated landmark-box mapping) runs on its photo; the detection matching the face (centre within half the
landmark box) gives the crop inference would take first. Written per axis, in units of the ground-truth
crop's side: the centre offset (mean, std) and the log side ratio (mean, std), plus the detection rate. The
training recipes' ``augment.shift`` is set from the offset std (docs/training.md). Per-face results are cached
outside the repository (``--cache``, derived from research data); a second run with the same faces reads them
instead of detecting again.
"""

import argparse
import json
from pathlib import Path

import numpy as np


def measure(faces, detector):
    from flzoo.data.crop import crop_square
    from flzoo.data.datasets import load_image

    rows, by_image = [], {}
    for face in faces:
        by_image.setdefault(str(face.image_path), []).append(face)
    for path, group in by_image.items():
        found = detector(load_image(group[0]))
        for face in group:
            cx, cy, side = crop_square(face.points)
            best = None
            for (x0, y0, x1, y1), score in found:
                dc = np.array([(x0 + x1) / 2 - cx, (y0 + y1) / 2 - cy])
                if np.abs(dc).max() < 0.5 * side / 1.3 and (best is None or score > best[2]):
                    bx, by, bside = crop_square(np.array([[x0, y0], [x1, y1]]))
                    best = ((bx - cx) / side, (by - cy) / side, score, float(np.log(bside / side)))
            rows.append({"image": Path(path).name, "found": best is not None,
                         **({"dx": best[0], "dy": best[1], "log_side": best[3], "score": best[2]} if best else {})})
    return rows


def summary(rows):
    hit = [r for r in rows if r["found"]]
    arr = {k: np.array([r[k] for r in hit]) for k in ("dx", "dy", "log_side")}
    out = {"faces": len(rows), "detected": len(hit), "detection_rate": round(len(hit) / max(1, len(rows)), 4)}
    for k, v in arr.items():
        out[k] = {"mean": round(float(v.mean()), 4), "std": round(float(v.std()), 4),
                  "p5": round(float(np.percentile(v, 5)), 4), "p95": round(float(np.percentile(v, 95)), 4)}
    return out


def main():
    from flzoo.data.datasets import TRAIN_SUBSETS, discover
    from flzoo.detect import DlibDetector
    from flzoo.paths import default_data_root

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(default_data_root()))
    parser.add_argument("--out", default="docs/detector_boxes.json", help="the summary")
    parser.add_argument("--cache", default="../flzoo-runs/detector_boxes_faces.json", help="per-face results")
    args = parser.parse_args()
    sets = discover(args.root)
    faces = [f for s in TRAIN_SUBSETS for f in sets.get(s, [])]
    names = [f.image_path.name for f in faces]
    cache = Path(args.cache)
    cached = json.loads(cache.read_text()) if cache.is_file() else {}
    if cached.get("faces") == names:
        rows = cached["rows"]
    else:
        rows = measure(faces, DlibDetector())
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"faces": names, "rows": rows}) + "\n")
    result = {"detector": "DlibDetector()", "subsets": list(TRAIN_SUBSETS), "summary": summary(rows),
              "units": "crop-centre offset dx, dy and log side ratio of the crop from the detector box vs the "
                       "ground-truth crop, in units of the ground-truth crop side"}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
