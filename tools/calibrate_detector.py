"""Measure how a face detector's box relates to the 68-point landmark box (the calibration constants in
flzoo/detect.py), how many faces each score threshold keeps, and how far the first crop from a mapped box is
from the training crop (the error the refinement pass in flzoo.inference removes).

    python tools/calibrate_detector.py [--detector dlib|blazeface|blazeface_full] [--root DATA_ROOT]
        [--subsets helen_train,afw] [--n 600]

Fit the constants on training subsets only; run on helen_test to see the residual first-crop error there.
A face counts as found at threshold t when a detection with score >= t has its centre within half the
landmark box of the landmark box's centre; the constants are medians over the faces found at ``CALIBRATE_AT``.
"""

import argparse
import time

import numpy as np

# per detector: the score thresholds reported, and the one the constants are fitted at (dlib: its own default
# 0; BlazeFace: MediaPipe's default 0.5). The lowest threshold is the one detection runs at.
THRESHOLDS = {"dlib": (-0.5, 0.0, 0.2, 0.3, 0.5), "blazeface": (0.1, 0.3, 0.5, 0.6, 0.75)}
CALIBRATE_AT = {"dlib": 0.0, "blazeface": 0.5}


def main():
    from flzoo.data.datasets import discover, load_image
    from flzoo.detect import DETECTORS, get_detector, to_landmark_box
    from flzoo.paths import default_data_root

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", default="dlib", choices=list(DETECTORS))
    parser.add_argument("--root", default=str(default_data_root()))
    parser.add_argument("--subsets", default="helen_train,afw")
    parser.add_argument("--n", type=int, default=600, help="faces to use (the first N of the subsets)")
    args = parser.parse_args()
    family = "dlib" if args.detector == "dlib" else "blazeface"
    thresholds, calibrate_at = THRESHOLDS[family], CALIBRATE_AT[family]
    sets = discover(args.root)
    faces = [f for s in args.subsets.split(",") for f in sets.get(s, [])][: args.n]
    det = get_detector(args.detector)
    offsets, ratios, scores, centre_err, scale_err, seconds = [], [], [], [], [], []
    for face in faces:
        img = load_image(face)
        start = time.perf_counter()
        found = det.raw(img, threshold=thresholds[0])
        seconds.append(time.perf_counter() - start)
        lo, hi = face.points.min(0), face.points.max(0)
        lc, lside = (lo + hi) / 2, max(hi - lo)
        best = None
        for box, sc in found:
            c = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
            if np.abs(c - lc).max() < 0.5 * lside and (best is None or sc > best[1]):
                best = (box, sc)
        scores.append(-np.inf if best is None else best[1])
        if best is not None and best[1] >= calibrate_at:
            box = best[0]
            w = max(box[2] - box[0], box[3] - box[1])
            offsets.append((lc - [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]) / w)
            ratios.append(lside / w)
            x0, y0, x1, y1 = to_landmark_box(box, det.calibration)
            centre_err.append(np.hypot((x0 + x1) / 2 - lc[0], (y0 + y1) / 2 - lc[1]) / lside)
            scale_err.append(abs(np.log(max(x1 - x0, y1 - y0) / lside)))
    scores = np.array(scores)
    print(f"detector {det!r}; faces: {len(faces)} from {args.subsets}; "
          f"detection {1000 * np.median(seconds):.1f} ms/photo (median)")
    for t in thresholds:
        print(f"detection rate at score >= {t:+.2f}: {np.mean(scores >= t):.3f}")
    off = np.array(offsets)
    print(f"calibration from the {len(off)} faces found at score >= {calibrate_at:g}, in units of the detector "
          f"box's longer side w:")
    print(f"  landmark-box centre offset / w (median dx, dy): {np.median(off, 0).round(3)}")
    print(f"  landmark-box side / w (median): {np.median(ratios):.3f}")
    print(f"first crop from the mapped box (current constants {det.calibration}) vs the training crop (median, "
          f"90th percentile): centre off by {np.median(centre_err):.3f}, {np.percentile(centre_err, 90):.3f} of "
          f"the landmark box; size off by a factor {np.exp(np.median(scale_err)):.3f}, "
          f"{np.exp(np.percentile(scale_err, 90)):.3f}")


if __name__ == "__main__":
    main()
