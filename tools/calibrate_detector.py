"""Measure how dlib's HOG face box relates to the 68-point landmark box (the constants in flzoo/detect.py),
how many faces each score threshold keeps, and how far the first crop from a mapped box is from the training
crop (the error the refinement pass in flzoo.inference removes).

    python tools/calibrate_detector.py [--root DATA_ROOT] [--subsets helen_train,afw] [--n 600]

Fit the constants on training subsets only; run on helen_test to see the residual first-crop error there."""

import argparse

import numpy as np


def main():
    import dlib

    from flzoo.data.datasets import discover, load_image
    from flzoo.detect import dlib_to_landmark_box
    from flzoo.paths import default_data_root

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(default_data_root()))
    parser.add_argument("--subsets", default="helen_train,afw")
    parser.add_argument("--n", type=int, default=600, help="faces to use (the first N of the subsets)")
    args = parser.parse_args()
    sets = discover(args.root)
    faces = [f for s in args.subsets.split(",") for f in sets.get(s, [])][: args.n]
    det = dlib.get_frontal_face_detector()
    offsets, ratios, scores, centre_err, scale_err = [], [], [], [], []
    for face in faces:
        img = load_image(face)
        rects, s, _ = det.run(img, 1, -0.5)
        lo, hi = face.points.min(0), face.points.max(0)
        lc, lside = (lo + hi) / 2, max(hi - lo)
        best = None
        for r, sc in zip(rects, s):
            c = np.array([(r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2])
            w = r.right() - r.left()
            if np.abs(c - lc).max() < 0.5 * lside and (best is None or sc > best[2]):
                best = (c, w, sc, r)
        scores.append(-np.inf if best is None else best[2])
        if best is not None and best[2] >= 0:
            offsets.append((lc - best[0]) / best[1])
            ratios.append(lside / best[1])
            r = best[3]
            x0, y0, x1, y1 = dlib_to_landmark_box((r.left(), r.top(), r.right(), r.bottom()))
            centre_err.append(np.hypot((x0 + x1) / 2 - lc[0], (y0 + y1) / 2 - lc[1]) / lside)
            scale_err.append(abs(np.log(max(x1 - x0, y1 - y0) / lside)))
    scores = np.array(scores)
    print(f"faces: {len(faces)} from {args.subsets}")
    for t in (-0.5, 0.0, 0.2, 0.3, 0.5):
        print(f"detection rate at score >= {t:+.1f}: {np.mean(scores >= t):.3f}")
    off = np.array(offsets)
    print(f"landmark-box centre offset / dlib width (median dx, dy): {np.median(off, 0).round(3)}")
    print(f"landmark-box side / dlib width (median): {np.median(ratios):.3f}")
    print(f"first crop from the mapped dlib box vs the training crop (median, 90th percentile): centre off by "
          f"{np.median(centre_err):.3f}, {np.percentile(centre_err, 90):.3f} of the landmark box; "
          f"size off by a factor {np.exp(np.median(scale_err)):.3f}, {np.exp(np.percentile(scale_err, 90)):.3f}")


if __name__ == "__main__":
    main()
